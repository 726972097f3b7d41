"""The one label table: names, aliases, REP-155 expressions and valence/arousal."""
import numpy as np
import pytest

from avemo_ros.labels import (EMOTIONS, FER2013_LABELS, FER2013_NAMES, RAVDESS_LABELS, REP155,
                              canonical, canonical_labels, emotion, expression, valence_arousal)

# hri_msgs/msg/Expression.msg (hri_msgs 2.0.0) string constants this table may use.
HRI_EXPRESSIONS = {"neutral", "angry", "sad", "happy", "surprised", "disgusted", "scared",
                   "annoyed", "excited"}


def test_every_label_has_a_rep155_expression_and_circumplex_coordinates():
    for e in EMOTIONS:
        assert e.expression in HRI_EXPRESSIONS and REP155[e.rep155] == e.expression
        assert -1 <= e.valence <= 1 and -1 <= e.arousal <= 1
    for label in RAVDESS_LABELS:
        assert emotion(label) is not None and emotion(label).name == label
    assert expression("calm") == "neutral" and expression("fearful") == "scared"
    assert expression("frustrated") == "annoyed" and expression("no such label") == ""


def test_fer_names_map_onto_the_table():
    assert canonical("fear") == "fearful" and canonical("Surprise") == "surprised"
    assert canonical("happiness") == "happy" and canonical("unknown") == "unknown"
    assert FER2013_LABELS == canonical_labels(FER2013_NAMES) == (
        "angry", "disgust", "fearful", "happy", "sad", "surprised", "neutral")
    with pytest.raises(ValueError, match="one emotion twice"):
        canonical_labels(["fear", "fearful"])


def test_seven_and_eight_label_bundles_give_the_same_valence_arousal_for_one_emotion():
    eight = np.eye(len(RAVDESS_LABELS))[RAVDESS_LABELS.index("fearful")]
    seven = np.eye(len(FER2013_NAMES))[FER2013_NAMES.index("fear")]
    assert valence_arousal(RAVDESS_LABELS, eight) == valence_arousal(FER2013_NAMES, seven) \
        == (emotion("fearful").valence, emotion("fearful").arousal)
    mixed = valence_arousal(["happy", "sad"], np.array([0.5, 0.5]))
    assert mixed == pytest.approx(((0.8 - 0.7) / 2, (0.5 - 0.4) / 2))
    assert valence_arousal(["happy", "mystery"], np.array([0.0, 1.0])) == (0.0, 0.0)
