"""Deterministic synthetic audio-visual emotion clips in the RAVDESS layout and naming.

Each clip is a shaded, Haar-detectable face that "speaks" a seven-syllable statement:
a harmonic voice gated by a syllable envelope, whose level, pitch contour, tremolo and
voice quality depend on the emotion, and a face whose mouth, brows and eyes depend on
the emotion while the jaw follows the same syllable envelope.

The two modalities are built to be complementary. Emotions share an audio style within
{neutral, calm}, {happy, surprised}, {angry, disgust} (sad, fearful apart) and a face
style within {neutral, sad}, {calm, fearful}, {surprised, angry} (happy, disgust apart),
so each modality alone tops out near 5/8 accuracy (2/3 with RAVDESS' half-sized neutral
class) while the fused pair can separate all eight. Cues seen by both modalities (the
syllable tempo that moves the jaw) may only differ between the connected components of
both groupings, {neutral, calm, sad, fearful} and {happy, surprised, angry, disgust};
tempo is therefore two-level.

Intensity 02 exaggerates every cue's deviation from the neutral style; the neutral
styles themselves (and so neutral vs calm audio, neutral vs sad video) are unaffected.

Run ``python -m training.synthetic --root data/synthetic`` to write a dataset.

Modules: ``styles`` (labels, voice and face styles), ``actors``, ``speech`` (syllable
timing), ``voice``, ``face``, ``clips`` (:func:`render_clip`), ``dataset``
(:func:`generate_dataset`, the command line).
"""
from .actors import Actor, make_actor
from .clips import render_clip
from .dataset import generate_dataset, main, ravdess_name
from .styles import (INTENSITY_SCALE, LABELS, FaceStyle, VoiceStyle, audio_group,
                     video_group)

__all__ = ["INTENSITY_SCALE", "LABELS", "Actor", "FaceStyle", "VoiceStyle", "audio_group",
           "generate_dataset", "main", "make_actor", "ravdess_name", "render_clip",
           "video_group"]
