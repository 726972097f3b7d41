"""The one label table: names, aliases, REP-155 expressions and valence/arousal."""
import re
from pathlib import Path

import numpy as np
import pytest

from avemo_ros.labels import (EMOTIONS, FER2013_LABELS, FER2013_NAMES, RAVDESS_LABELS, REP155,
                              canonical, canonical_labels, emotion, expression, valence_arousal)

# hri_msgs/msg/Expression.msg's string constants (hri_msgs 2.0.0), read from the fixture
# package's definition (test/fixtures/hri_msgs), which the node's REP-155 output uses here.
_FIXTURE = Path(__file__).parent / "fixtures" / "hri_msgs" / "msg" / "Expression.msg"
HRI_CONSTANTS = dict(re.findall(r'^string ([A-Z_]+)="([a-z_]+)"$', _FIXTURE.read_text(), re.M))
HRI_EXPRESSIONS = set(HRI_CONSTANTS.values())


def test_the_table_uses_hri_msgs_constants_by_their_names():
    assert len(HRI_CONSTANTS) == 25  # the released Expression.msg's constants
    assert all(HRI_CONSTANTS[name] == value for name, value in REP155.items())


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
