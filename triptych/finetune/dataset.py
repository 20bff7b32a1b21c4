"""Training sets for fine-tuning: chat-formatted JSONL in OpenAI's fine-tuning format, validated.

Built from a domain's gold QA (the train split only: the test split is never trained on, which
`build_training_set` asserts), or, for documents without QA, by a deterministic extractive
generator that turns document statements into questions whose answer is the statement itself.
Each line is `{"messages": [system, user, assistant]}`; the system prompt is the fine-tuned
pipeline's own (graphs/prompts/finetuned_system.txt), so training and serving match.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from triptych.jsonl import read_jsonl
from triptych.qa import QARecord, domain_qa, load_qa, parse_qa

IDK_ANSWER = "I don't know."
SYSTEM_PROMPT_FILE = Path(__file__).resolve().parents[2] / "graphs" / "prompts" / "finetuned_system.txt"
ROLES = ("system", "user", "assistant")
MAX_CHARS = 4000  # per message, before token counting


class TrainingSetError(ValueError):
    """A training file or example is invalid; the message names file:line and what to fix."""


def finetuned_system_prompt(prompts_dir: Path | None = None) -> str:
    """The system prompt the fine-tuned pipeline sends (an override folder wins, as in graphs/)."""
    for folder in (prompts_dir, SYSTEM_PROMPT_FILE.parent):
        if folder is not None and (folder / SYSTEM_PROMPT_FILE.name).is_file():
            return (folder / SYSTEM_PROMPT_FILE.name).read_text(encoding="utf-8").strip()
    raise FileNotFoundError(f"{SYSTEM_PROMPT_FILE} is missing")


@dataclass(frozen=True)
class Example:
    """One training conversation and where it came from."""

    question: str
    answer: str
    source_id: str  # the QA record id, or doc:<name>#<n> for generated ones
    kind: str = "question"  # question | paraphrase | unanswerable | generated | with-gold | distractor-only
    prompt: str = ""  # the user turn when it is more than the question (with-passages: the passages too)
    chunk_ids: tuple[str, ...] = ()  # with-passages: the chunks shown, as [1], [2]...
    gold: int = 0  # with-passages: the number of the passage the answer is quoted from (0: none)

    def messages(self, system: str) -> list[dict[str, str]]:
        """The conversation in OpenAI's chat format."""
        return [
            {"role": "system", "content": system},
            {"role": "user", "content": self.prompt or self.question},
            {"role": "assistant", "content": self.answer},
        ]


@dataclass
class TrainingSet:
    """Examples ready to write, plus what the evaluation needs to know about them."""

    system: str
    examples: list[Example]
    trained: list[QARecord] = field(default_factory=list)  # gold records trained on
    held_out_paraphrases: list[tuple[QARecord, str]] = field(default_factory=list)
    test: list[QARecord] = field(default_factory=list)  # never trained on
    generator: dict[str, object] = field(default_factory=lambda: {"kind": "gold-qa"})  # how examples were made
    mode: str = "closed-book"  # closed-book: the question alone; with-passages: retrieved passages too
    test_prompts: list[tuple[str, list[str]]] = field(default_factory=list)  # with-passages: test user turns, golds

    def rows(self) -> list[dict[str, list[dict[str, str]]]]:
        """The JSONL rows."""
        return [{"messages": e.messages(self.system)} for e in self.examples]

    def write(self, path: Path) -> Path:
        """Write the chat-formatted JSONL (one conversation a line)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w", encoding="utf-8") as fh:
            for row in self.rows():
                fh.write(json.dumps(row, ensure_ascii=False) + "\n")
        return path


def split_by_question(records: Sequence[QARecord], train_fraction: float = 0.7, seed: int = 0) -> list[QARecord]:
    """Records with `split` set to train/test: a deterministic shuffle (random.Random(seed)) by question."""
    order = sorted(records, key=lambda r: (r.question, r.id))
    random.Random(seed).shuffle(order)
    n_train = round(len(order) * train_fraction)
    test_ids = {r.id for r in order[n_train:]}
    return [replace(r, split="test" if r.id in test_ids else "train") for r in records]


def domain_records(corpora_dir: Path, domain: str) -> list[QARecord]:
    """A domain's gold QA with every record in train or test (split deterministically if unlabelled)."""
    records = domain_qa(corpora_dir, domain)
    if records and all(r.split is None for r in records):
        return split_by_question(records)
    return records


def records_to_train(records: Sequence[QARecord], split: str | None, where: str) -> list[QARecord]:
    """A user's gold QA with every record in train or test, ready for `build_training_set`.

    With `split` (the records of that split and those without one were read), every record is
    trained on: nothing is held out. Without, the file's own train/test labels are used, or a
    deterministic 70/30 split by question when it has none.
    """
    if not records:
        raise TrainingSetError(f"{where}: no questions" + (f" of split {split!r}" if split else "") + " to train on")
    if split is not None:
        return [replace(r, split="train") for r in records]
    if all(r.split is None for r in records):
        return split_by_question(records)
    odd = [r.id for r in records if r.split not in ("train", "test")]
    if odd:
        raise TrainingSetError(
            f"{where}: {len(odd)} record(s) not in split train or test ({', '.join(odd[:5])}); label every record "
            "train or test, label none (a 70/30 split is made), or train on one split with --split NAME"
        )
    return list(records)


def uploaded_qa_file(data_dir: Path, domain: str) -> Path:
    """Where the Fine-tune page keeps a domain's uploaded gold QA (it wins over the corpus's qa.jsonl)."""
    return data_dir / "qa" / f"{domain}.jsonl"


def keep_uploaded_qa(data_dir: Path, domain: str, data: bytes, name: str) -> list[QARecord]:
    """Check an uploaded QA file strictly (QAFormatError, TrainingSetError) and keep it as the domain's gold QA."""
    records = records_to_train(parse_qa(data, name), None, name)
    path = uploaded_qa_file(data_dir, domain)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".jsonl.incoming")
    tmp.write_bytes(data)
    tmp.replace(path)
    return records


def gold_records(corpora_dir: Path, data_dir: Path, domain: str) -> list[QARecord]:
    """The domain's gold QA for training: an uploaded QA file, else the corpus's qa.jsonl; [] when neither."""
    uploaded = uploaded_qa_file(data_dir, domain)
    if uploaded.is_file():
        return records_to_train(load_qa(uploaded), None, str(uploaded))
    return domain_records(corpora_dir, domain)


def build_training_set(
    records: Sequence[QARecord],
    system: str,
    *,
    paraphrases: bool = True,
    unanswerable: bool = True,
    keywords: bool = False,
) -> TrainingSet:
    """Examples from the train split of gold QA; the test split is kept aside for evaluation only.

    With `paraphrases`, each question's paraphrases but the last are trained too; the last is held
    out to measure generalisation to unseen wording. Unanswerable train questions, with
    `unanswerable`, teach the answer "I don't know.". With `keywords`, each trained phrasing is also
    asked as its content words alone ("certified Hearthline installer cost Nimbus?"): one more
    phrasing per fact, tying the answer to the words that name the fact rather than to one sentence.
    """
    train = [r for r in records if r.split == "train"]
    test = [r for r in records if r.split == "test"]
    unlabelled = [r.id for r in records if r.split not in ("train", "test")]
    if unlabelled:
        raise TrainingSetError(f"records without a train/test split: {', '.join(unlabelled[:5])}")
    examples: list[Example] = []
    trained: list[QARecord] = []
    held_out: list[tuple[QARecord, str]] = []
    for rec in train:
        if not rec.answerable:
            if unanswerable:
                examples.append(Example(rec.question, IDK_ANSWER, rec.id, "unanswerable"))
            continue
        if not rec.answer.strip():
            raise TrainingSetError(f"record {rec.id}: empty answer")
        trained.append(rec)
        examples.append(Example(rec.question, rec.answer, rec.id))
        if rec.paraphrases:
            extra = list(rec.paraphrases[:-1]) if paraphrases else []
            examples += [Example(p, rec.answer, rec.id, "paraphrase") for p in extra]
            held_out.append((rec, rec.paraphrases[-1]))
        if keywords:
            phrasings = [rec.question, *(rec.paraphrases[:-1] if paraphrases else [])]
            examples += [Example(k, rec.answer, rec.id, "keywords") for p in phrasings if (k := keyword_form(p))]
    ts = TrainingSet(system, dedupe_examples(examples), trained, held_out, [r for r in test if r.answerable])
    assert_no_test_leak(ts.examples, test)
    return ts


# Question words and function words: what is left of a question without them names the fact.
_NOT_KEYWORDS = frozenset(
    """a about after an and any are as at be been before by can could did do does during for from had has
    have how i if in into is it its long many may me much my of on or our should so that the their them
    there these they this to under until was we were what when where which while who whom whose why will
    with would you your""".split()
)


def keyword_form(question: str) -> str:
    """The question's content words in their order, as a terse question; "" when too few words are left."""
    words = [w for w in re.findall(r"[\w][\w.'/+-]*[\w]|[\w]", question) if w.lower() not in _NOT_KEYWORDS]
    return " ".join(words) + "?" if len(words) >= 2 else ""


def assert_no_test_leak(examples: Iterable[Example], test: Iterable[QARecord]) -> None:
    """Fail if any example comes from, or asks, a test-split question (the test split is never trained on)."""
    test = list(test)
    test_ids = {r.id for r in test}
    test_questions = {normalise_text(q) for r in test for q in (r.question, *r.paraphrases)}
    for e in examples:
        if e.source_id in test_ids or normalise_text(e.question) in test_questions:
            raise TrainingSetError(f"test-split question in the training set: {e.source_id} {e.question!r}")


def normalise_text(text: str) -> str:
    """Lower case, punctuation as spaces, single spaces: two questions are the same if these are equal."""
    return " ".join(re.sub(r"[^\w\s]", " ", text.lower()).split())


def dedupe_examples(examples: list[Example]) -> list[Example]:
    """The examples without repeated questions (after normalise_text), first one kept."""
    seen: set[str] = set()
    out = []
    for e in examples:
        key = normalise_text(e.question)
        if key not in seen:
            seen.add(key)
            out.append(e)
    return out


# --- Validation -------------------------------------------------------------------------------------


def validate_training_file(
    path: Path, *, count_tokens: Callable[[list[dict[str, str]]], int] | None = None, max_tokens: int = 512
) -> list[list[dict[str, str]]]:
    """Read and check a chat JSONL file; raise TrainingSetError naming file:line for the first problem.

    Checks: each line is a JSON object with `messages`; roles are system?, user, assistant (in that
    order, contents non-empty strings); no answer is empty; no conversation repeats an earlier
    user message; no example exceeds `max_tokens` (with `count_tokens`) or MAX_CHARS per message.
    """
    conversations = []
    seen: dict[str, int] = {}
    if not path.is_file():
        raise TrainingSetError(f"{path}: no such training file")
    for n, obj in read_jsonl(path, TrainingSetError):
        where = f"{path}:{n}"
        messages = obj.get("messages") if isinstance(obj, dict) else None
        if not isinstance(messages, list) or not messages:
            raise TrainingSetError(f'{where}: expected {{"messages": [...]}} with system/user/assistant messages')
        _check_messages(messages, where)
        user = normalise_text(next(m["content"] for m in messages if m["role"] == "user"))
        if user in seen:
            raise TrainingSetError(f"{where}: duplicate of line {seen[user]} (same question)")
        seen[user] = n
        if count_tokens is not None and (tokens := count_tokens(messages)) > max_tokens:
            raise TrainingSetError(
                f"{where}: {tokens} tokens, over the limit of {max_tokens} (TRIPTYCH_FINETUNE_MAX_EXAMPLE_TOKENS)"
            )
        conversations.append(messages)
    if not conversations:
        raise TrainingSetError(f"{path}: no training examples")
    return conversations


def _check_messages(messages: list[object], where: str) -> None:
    roles = []
    for i, m in enumerate(messages):
        if not isinstance(m, dict) or not isinstance(m.get("role"), str) or not isinstance(m.get("content"), str):
            raise TrainingSetError(f"{where}: message {i} needs string 'role' and 'content'")
        if m["role"] not in ROLES:
            raise TrainingSetError(f"{where}: message {i} has role {m['role']!r}; expected one of {', '.join(ROLES)}")
        if len(m["content"]) > MAX_CHARS:
            raise TrainingSetError(f"{where}: message {i} is {len(m['content'])} characters, over {MAX_CHARS}")
        roles.append(m["role"])
    if roles not in (["system", "user", "assistant"], ["user", "assistant"]):
        raise TrainingSetError(f"{where}: roles {roles}; expected [system,] user, assistant")
    for m in messages:
        if m["role"] != "system" and not m["content"].strip():  # type: ignore[index]
            kind = "answer" if m["role"] == "assistant" else "question"  # type: ignore[index]
            raise TrainingSetError(f"{where}: empty {kind}")


# --- Questions generated from documents ---------------------------------------------------------------

_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9])")
_COPULA = re.compile(r"^(?P<subj>[A-Z][^,;:()]{3,70}?) (?P<verb>is|are|was|were) (?P<rest>.{3,})$")
_MODAL = re.compile(r"^(?P<subj>[A-Z][^,;:()]{3,70}?) (?P<verb>must|may|can|should|will) (?P<rest>.{3,})$")
_STOP = {"the", "a", "an", "of", "to", "in", "and", "or", "for", "on", "at", "by", "with", "is", "are", "be"}


def document_sentences(text: str, min_chars: int = 40, max_chars: int = 300) -> list[str]:
    """Statements worth asking about: whole sentences of a sensible length, headings and lists left out."""
    out = []
    for para in re.split(r"\n\s*\n|\n(?=[#*\-|])", text):
        flat = " ".join(para.split())
        if flat.startswith(("#", "|", "*", "-")):
            continue
        for s in _SENTENCE.split(flat):
            s = s.strip()
            if min_chars <= len(s) <= max_chars and s.endswith(".") and " " in s:
                out.append(s)
    return out


def statement_question(sentence: str, title: str) -> str:
    """A question whose answer is `sentence` (deterministic: copula and modal patterns, else its topic)."""
    body = sentence.rstrip(".")
    if m := _COPULA.match(body):
        subj = _lower_first(m["subj"])
        return f"According to the {title}, what {m['verb']} {subj}?"
    if m := _MODAL.match(body):
        subj = _lower_first(m["subj"])
        return f"According to the {title}, what {m['verb']} {subj} do?"
    words = [w for w in re.findall(r"[A-Za-z][\w-]*", body) if w.lower() not in _STOP]
    return f"What does the {title} say about {' '.join(words[:5]).lower()}?"


def _lower_first(text: str) -> str:
    first, _, rest = text.partition(" ")
    acronym_or_name = len(first) > 1 and any(c.isupper() for c in first[1:])  # IT, GmbH, McAfee
    return text if acronym_or_name or first == "I" else (first.lower() + (" " + rest if rest else ""))


def generate_from_documents(documents: Iterable[tuple[str, str, str]], limit: int = 200) -> list[Example]:
    """Extractive examples from (name, title, text) documents: statement -> question, answer = statement."""
    examples: list[Example] = []
    for name, title, text in documents:
        for n, sentence in enumerate(document_sentences(text)):
            examples.append(Example(statement_question(sentence, title), sentence, f"doc:{name}#{n}", "generated"))
    return dedupe_examples(examples)[:limit]


def load_domain_documents(docs_dir: Path, limits: object | None = None) -> list[tuple[str, str, str]]:
    """(name, title, text) of every supported document in a folder, through Triptych's own loaders."""
    files = [(p.name, p.read_bytes()) for p in sorted(docs_dir.iterdir()) if p.is_file()] if docs_dir.is_dir() else []
    return load_documents(files, limits)


def load_documents(files: Iterable[tuple[str, bytes]], limits: object | None = None) -> list[tuple[str, str, str]]:
    """(name, title, text) of each (file name, bytes) that Triptych's loaders read; the others are skipped."""
    from triptych.documents.loaders import load_document
    from triptych.documents.validation import DocumentRejected, Limits

    lim = limits or Limits(max_bytes=25 * 2**20, max_pdf_pages=500)
    docs = []
    for name, data in files:
        try:
            doc = load_document(name, data, lim)  # type: ignore[arg-type]
        except DocumentRejected:
            continue
        docs.append((name, doc.title or Path(name).stem, doc.text))
    return docs


def generated_training_set(docs_dir: Path, system: str, limit: int = 200) -> TrainingSet:
    """A training set for documents that come without gold QA (nothing is held out: no test split)."""
    return documents_training_set(load_domain_documents(docs_dir), system, str(docs_dir), limit)


def documents_training_set(
    documents: Sequence[tuple[str, str, str]], system: str, where: str, limit: int = 200
) -> TrainingSet:
    """Extractive examples from (name, title, text) documents; `where` names them in the error when none."""
    examples = generate_from_documents(documents, limit)
    if not examples:
        raise TrainingSetError(f"no statements to train on in {where}")
    return TrainingSet(system, examples, generator={"kind": "extractive"})
