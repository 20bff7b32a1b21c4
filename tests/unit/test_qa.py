"""Gold QA files are read strictly: every wrong line is named file:line with its fix, never guessed at."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from triptych.cli import app
from triptych.finetune.dataset import (
    TrainingSetError,
    gold_records,
    keep_uploaded_qa,
    records_to_train,
)
from triptych.finetune.runs import training_set_for
from triptych.qa import QAFormatError, load_qa, parse_qa
from triptych.settings import Settings

GOOD = [
    {"id": "q1", "question": "How many days of leave?", "answer": "28 days", "alt_answers": ["28", "twenty-eight"],
     "doc_ids": ["leave"], "split": "train", "answerable": True, "paraphrases": ["Leave days per year?"]},
    {"id": "q2", "question": "Who approves travel?", "answer": "", "answer_type": "unanswerable", "split": "train",
     "answerable": False},
    {"id": "q3", "question": "When is payday?", "answer": "the last working day", "split": "test", "note": "kept"},
]  # fmt: skip


def jsonl(*records: object) -> bytes:
    return "".join(json.dumps(r) + "\n" for r in records).encode()


def test_a_good_file_reads_every_field(tmp_path: Path) -> None:
    path = tmp_path / "qa.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + jsonl(*GOOD) + b"\n")  # a byte-order mark and blank lines are fine
    records = load_qa(path)
    assert [r.id for r in records] == ["q1", "q2", "q3"]
    assert records[0].gold_answers == ["28 days", "28", "twenty-eight"]
    assert records[0].doc_ids == ("leave",) and records[0].paraphrases == ("Leave days per year?",)
    assert [r.answerable for r in records] == [True, False, True]
    assert records[2].extra == {"note": "kept"}
    assert [r.id for r in load_qa(path, "train")] == ["q1", "q2"]


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ({**GOOD[0], "alt_answers": "28 days"},
         'qa.jsonl:2: field \'alt_answers\' must be a list of strings, got the string "28 days"; it is refused '
         'rather than guessed (one item, or several separated by commas?): write ["28 days"] for one item'),
        ({**GOOD[0], "answerable": "false"},
         "qa.jsonl:2: field 'answerable' must be true or false (a JSON boolean, without quotes), "
         'got the string "false"'),
        ({**GOOD[0], "answerable": 0}, "field 'answerable' must be true or false"),
        ({**GOOD[0], "answer": 28},
         "qa.jsonl:2: field 'answer' must be text (a JSON string), got the number 28; write it in quotes: \"28\""),
        ({**GOOD[0], "question": ["a", "b"]}, "field 'question' must be text (a JSON string), got a list"),
        ({**GOOD[0], "doc_ids": ["leave", 7]}, "qa.jsonl:2: field 'doc_ids' item 1 must be a string, got the number 7"),
        ({**GOOD[0], "paraphrases": {"a": 1}}, "field 'paraphrases' must be a list of strings"),
        ({**GOOD[0], "split": 1}, "field 'split' must be text"),
        ({k: v for k, v in GOOD[0].items() if k != "answer"}, "qa.jsonl:2: field 'answer' is missing"),
        ({**GOOD[0], "question": "   "}, "qa.jsonl:2: empty question"),
        ({**GOOD[1], "id": "q1"}, "qa.jsonl:2: id 'q1' is already used on line 1; make it unique"),
        (["q1", "question"], "qa.jsonl:2: expected a JSON object, got a list"),
    ],
)  # fmt: skip
def test_each_malformed_record_is_refused_with_file_line_and_fix(tmp_path: Path, line: object, message: str) -> None:
    path = tmp_path / "qa.jsonl"
    path.write_bytes(jsonl(GOOD[0], line))
    with pytest.raises(QAFormatError) as err:
        load_qa(path)
    assert message in str(err.value)
    assert str(err.value).startswith(f"{path}:2: ")


def test_invalid_utf8_and_invalid_json_name_their_lines(tmp_path: Path) -> None:
    path = tmp_path / "qa.jsonl"
    path.write_bytes(jsonl(GOOD[0]) + b'{"id": "q2", "question": "Caf\xe9?", "answer": "x"}\n' + b'{"id": "q3",\n')
    with pytest.raises(QAFormatError) as err:
        load_qa(path)
    assert err.value.problems == [
        f"{path}:2: not UTF-8 text (byte 0xe9 at column 30); save the file as UTF-8",
        f"{path}:3: not valid JSON (Expecting property name enclosed in double quotes at column 13); each line "
        'must be one JSON object, e.g. {"id": "q1", "question": "How many days of leave?", "answer": "28 days", '
        '"alt_answers": ["28"]}',
    ]


def test_a_missing_file_is_an_error_not_a_traceback(tmp_path: Path) -> None:
    with pytest.raises(QAFormatError, match="cannot read the file"):
        load_qa(tmp_path / "nope.jsonl")


def test_records_for_training_use_the_files_splits_or_make_one(tmp_path: Path) -> None:
    records = parse_qa(jsonl(*GOOD), "qa.jsonl")
    assert [r.split for r in records_to_train(records, None, "qa.jsonl")] == ["train", "train", "test"]
    unlabelled = parse_qa(jsonl(*({**r, "split": None} for r in GOOD)), "qa.jsonl")
    assert sorted(r.split for r in records_to_train(unlabelled, None, "qa.jsonl")) == ["test", "train", "train"]
    assert {r.split for r in records_to_train(unlabelled, "train", "qa.jsonl")} == {"train"}  # --split: all trained
    mixed = parse_qa(jsonl(GOOD[0], {**GOOD[2], "split": "dev"}), "qa.jsonl")
    with pytest.raises(TrainingSetError, match="1 record\\(s\\) not in split train or test \\(q3\\)"):
        records_to_train(mixed, None, "qa.jsonl")
    with pytest.raises(TrainingSetError, match="qa.jsonl: no questions of split 'train' to train on"):
        records_to_train([], "train", "qa.jsonl")


def test_a_uploaded_qa_file_becomes_the_domains_training_set(clean_env: Path) -> None:
    settings = Settings(_env_file=None, data_dir=clean_env / "data", corpora_dir=clean_env / "corpora")  # type: ignore[call-arg]
    with pytest.raises(QAFormatError):
        keep_uploaded_qa(settings.data_dir, "acme", jsonl({**GOOD[0], "answerable": "false"}), "mine.jsonl")
    assert gold_records(settings.corpora_dir, settings.data_dir, "acme") == []  # a bad file is never kept
    keep_uploaded_qa(settings.data_dir, "acme", jsonl(*GOOD), "mine.jsonl")
    ts = training_set_for(settings, "acme")
    assert [(e.question, e.answer, e.kind) for e in ts.examples] == [
        ("How many days of leave?", "28 days", "question"),
        ("days leave?", "28 days", "keywords"),  # TRIPTYCH_FINETUNE_KEYWORD_PHRASINGS, on by default
        ("Who approves travel?", "I don't know.", "unanswerable"),
    ]
    assert [r.id for r in ts.test] == ["q3"] and [p for _, p in ts.held_out_paraphrases] == ["Leave days per year?"]


runner = CliRunner()


def test_finetune_qa_refuses_a_bad_file_naming_every_line(clean_env: Path) -> None:
    path = clean_env / "mine.jsonl"
    path.write_bytes(jsonl({**GOOD[0], "alt_answers": "28 days"}, GOOD[1], {**GOOD[2], "answerable": "false"}))
    result = runner.invoke(app, ["finetune", "--domain", "acme", "--qa", str(path)])
    assert result.exit_code == 2
    assert f"{path} is not a valid QA file (2 problems):" in result.output
    assert f"{path}:1: field 'alt_answers' must be a list of strings" in result.output
    assert f"{path}:3: field 'answerable' must be true or false" in result.output
    assert "Traceback" not in result.output and result.exception is None or isinstance(result.exception, SystemExit)


def test_finetune_qa_split_needs_a_file_and_hosted_jobs_refuse_it(clean_env: Path) -> None:
    result = runner.invoke(app, ["finetune", "--domain", "acme", "--split", "train"])
    assert result.exit_code == 2 and "--split picks the records of a --qa file" in result.output
    (clean_env / "mine.jsonl").write_bytes(jsonl(*GOOD))
    result = runner.invoke(app, ["finetune", "--domain", "acme", "--provider", "openai", "--qa", "mine.jsonl"])
    assert result.exit_code == 2 and "--qa trains a local LoRA run" in result.output
    result = runner.invoke(app, ["finetune", "--domain", "acme", "--qa", "mine.jsonl", "--split", "dev"])
    assert result.exit_code == 2 and "mine.jsonl: no questions of split 'dev' to train on" in result.output


def test_finetune_qa_trains_the_files_records(clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLI hands the file's records to the run; the run (here up to its training set) builds from them."""
    import triptych.finetune.runs as runs

    (clean_env / "mine.jsonl").write_bytes(jsonl(*GOOD))
    built: list[object] = []

    def run_until_the_training_set(settings, domain, config, *, records=None, records_from=None, **kw):  # type: ignore[no-untyped-def]
        ts = runs.training_set_for(settings, domain, records)
        built.append((domain, records_from, [e.question for e in ts.examples], [r.id for r in ts.test]))
        return {"run_id": "r1", "domain": domain, "status": "done"}

    monkeypatch.setattr(runs, "run_local", run_until_the_training_set)
    result = runner.invoke(app, ["finetune", "--domain", "acme", "--qa", "mine.jsonl", "--split", "train"])
    assert result.exit_code == 0, result.output
    # --split train: q3 (split test) is not read; q1's only paraphrase is held out to measure generalisation
    assert built == [("acme", "mine.jsonl", ["How many days of leave?", "days leave?", "Who approves travel?"], [])]
