"""The four benchmarks' released annotation formats read into items (videos found where each set
unpacks them, gold letters, buckets, lmms-eval's prompts), and the answer letter read from many
reply forms by each set's lmms-eval rule."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from vidsift.core.errors import ConfigError
from vidsift.pipeline.flows.eval_sets import (
    extract_choice, letter_regex_choice, multi_choice_choice, paren_choice, read_set,
)

from tests.eval_sets import eval_sets  # noqa: F401  (the session fixture)


def _items(eval_sets, fmt):
    annotations, root = eval_sets[fmt]
    return read_set(fmt, annotations, root)


def test_videomme_parquet(eval_sets):
    items = _items(eval_sets, "videomme")
    assert [i.id for i in items] == ["001-1", "001-2", "002-1"]
    assert [i.answer for i in items] == ["B", "D", "A"]
    assert [i.bucket for i in items] == ["short", "short", "medium"]
    root = eval_sets["videomme"][1]
    assert items[0].video == str(root / "data" / "vidA0000001.mp4")  # the data/ folder
    assert items[2].video == str(root / "vidB0000002.mp4")
    assert items[0].prompt == (
        "Select the best answer to the following multiple-choice question based on the video. "
        "Respond with only the letter (A, B, C, or D) of the correct option.\n"
        "How many bars are on screen?\nA. One.\nB. Two.\nC. Three.\nD. Four.\n"
        "The best answer is:")
    assert items[0].query == "How many bars are on screen?\nA. One.\nB. Two.\nC. Three.\nD. Four."
    assert items[0].options == ("One.", "Two.", "Three.", "Four.")
    assert items[0].category == "Counting Problem"


def test_longvideobench_json_and_parquet(eval_sets, tmp_path):
    items = _items(eval_sets, "longvideobench")
    root = eval_sets["longvideobench"][1]
    assert [(i.id, i.answer, i.bucket) for i in items] == [
        ("vidA_0", "C", "8-15 s"), ("vidB_0", "A", "15-60 s")]
    assert items[1].video == str(root / "videos" / "vidB.mp4")
    assert items[0].prompt == ("Which colour is the widest bar?\nA. red\nB. green\nC. blue\n"
                               "D. white\nAnswer with the option's letter from the given choices "
                               "directly.\n")
    assert items[1].letters == ("A", "B", "C", "D", "E")
    # the same rows as the set's parquet: option0..option4, "N/A" past the last
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = json.loads(Path(eval_sets["longvideobench"][0]).read_text())
    flat = [{**{k: v for k, v in row.items() if k != "candidates"},
             **{f"option{i}": (row["candidates"][i] if i < len(row["candidates"]) else "N/A")
                for i in range(5)}} for row in rows]
    pq.write_table(pa.Table.from_pylist(flat), tmp_path / "validation-00000-of-00001.parquet")
    assert read_set("longvideobench", tmp_path / "validation-00000-of-00001.parquet",
                    root) == items


def test_mlvu_json_folder(eval_sets):
    items = _items(eval_sets, "mlvu")
    root = eval_sets["mlvu"][1]
    assert [(i.id, i.answer, i.bucket, i.category) for i in items] == [
        ("1_plotQA/0", "A", "< 3 min", "plotQA"), ("4_count/0", "C", "10-30 min", "count")]
    assert items[0].video == str(root / "1_plotQA" / "movie_a.mp4")
    assert items[0].prompt == ("\nWhat does the screen show?\n(A) bars\n(B) a face\n(C) a car\n"
                               "(D) text\nOnly give the best option.\n\nBest option: (")
    # one task's file alone
    one = read_set("mlvu", Path(eval_sets["mlvu"][0]) / "4_count.json", root)
    assert [i.id for i in one] == ["4_count/0"]


def test_lvbench_jsonl(eval_sets):
    items = _items(eval_sets, "lvbench")
    root = eval_sets["lvbench"][1]
    assert [(i.id, i.answer, i.bucket) for i in items] == [
        ("101", "A", "< 3 min"), ("102", "C", "10-30 min"), ("103", "B", "30-60 min")]
    assert items[0].options == ("bars", "a dog", "the sea", "a car")
    assert items[0].prompt == ("What is shown?\n(A) bars\n(B) a dog\n(C) the sea\n(D) a car\n"
                               "Answer the question with the option letter")
    assert items[1].video == str(root / "videos" / "vidB.mp4")
    assert items[1].category == "key information retrieval, reasoning"
    assert items[2].video == str(root / "vidGone.mp4")  # nowhere: its expected path


def test_bad_input_is_a_config_error_naming_the_file(eval_sets, tmp_path):
    with pytest.raises(ConfigError, match="choose one of videomme"):
        read_set("egoschema", *eval_sets["lvbench"])
    with pytest.raises(ConfigError, match="annotations not found"):
        read_set("lvbench", tmp_path / "none.jsonl", tmp_path)
    with pytest.raises(ConfigError, match="not videomme annotations"):
        read_set("videomme", *eval_sets["lvbench"])


@pytest.mark.parametrize(("reply", "letter"), [
    ("B", "B"), ("B.", "B"), (" (C) ", "C"), ("The best answer is D.", "D"),
    ("The answer is: A", "A"), ("The correct option is C", "C"), ("Best option: B", "B"),
    ("Best answer: C", "C"),  # lmms-eval's joined prefixes would read the B of "Best"
    ("A man is running", "A"),  # the first capital A-D anywhere, as lmms-eval reads it
    ("I think it is c", ""), ("none of these", ""), ("", ""),
    ("the bars are red and green and blue and white all the time here", ""),
])
def test_videomme_and_lvbench_letter_rule(reply, letter):
    assert letter_regex_choice(reply) == letter


OPTIONS = ("they fade", "they split", "they stay", "they turn", "they vanish")


@pytest.mark.parametrize(("reply", "letter"), [
    ("A", "A"), ("E.", "E"), ("(B)", "B"), ("(B) they split", "B"),
    ("I pick (A), not (C)", "C"),  # several bracketed: the last mentioned
    ("C they stay", "C"), ("Answer: D.", "D"),
    ("In the video the bars they vanish at the end", "E"),  # by the option's text
])
def test_longvideobench_multi_choice_rule(reply, letter):
    assert multi_choice_choice(reply, OPTIONS, seed="x") == letter


def test_longvideobench_rule_without_a_candidate_draws_a_letter_by_the_items_id():
    drawn = {multi_choice_choice("hmm", OPTIONS, seed=f"item{i}") for i in range(40)}
    assert drawn <= set("ABCDE") and len(drawn) > 1
    assert multi_choice_choice("hmm", OPTIONS, seed="q7") == multi_choice_choice(
        "hmm", OPTIONS, seed="q7")


@pytest.mark.parametrize(("reply", "letter"), [
    ("B) a face", "B"), ("C)", "C"), ("(A) bars", "A"), ("D", "D"), (" A ", "A"),
    (") nothing", ""), ("A. bars", "A. bars"),  # no ")": the whole reply, wrong unless a letter
])
def test_mlvu_paren_rule(reply, letter):
    assert paren_choice(reply) == letter


def test_extract_choice_uses_each_sets_rule(eval_sets):
    mlvu = _items(eval_sets, "mlvu")[0]
    lvb = _items(eval_sets, "longvideobench")[1]
    videomme = _items(eval_sets, "videomme")[0]
    assert extract_choice(mlvu, "B) a face") == "B"
    assert extract_choice(videomme, "B) a face") == "B"
    assert extract_choice(lvb, "the answer: they vanish, clearly so") == "E"
    assert extract_choice(videomme, "the answer: they vanish, clearly so") == ""
