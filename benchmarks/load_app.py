"""A room at once: several real headless Chromium sessions asking, one uploading, against the real app.

Starts `streamlit run app.py` on loopback (fresh data folder; the demo indexes are built first, or
reused with --chroma-path), then for --duration seconds N sessions each ask the demo domain's preset
questions in all three columns, one after another, while one more session uploads small documents
into new domains on the Documents page. Prints one JSON object: comparisons finished, errors (goal
0), answers cut short (goal 0), p50/p95 time from the click to the last answer, uploads, and the
peak resident memory of the app and of the model servers.

    .venv/bin/python benchmarks/load_app.py --duration 300 --sessions 4

With --data-dir naming a folder where `triptych finetune --domain D` has run (same --chroma-path),
the fine-tuned column answers too; otherwise it says the domain is not fine-tuned yet.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from triptych.browser_harness import REPO, RunningApp, chromium, running_app, select  # noqa: E402
from triptych.evaluate.scoring import percentile  # noqa: E402
from triptych.qa import domain_qa  # noqa: E402

SAVED = re.compile(r"Saved to the history as (\S+?)\.")
ANSWER_TIMEOUT_S = 600


class Sampler(threading.Thread):
    """Peak RSS of the app process and of its llama.cpp servers, sampled every half second."""

    def __init__(self, app: RunningApp) -> None:
        super().__init__(daemon=True)
        self.root = psutil.Process(app.proc.pid)
        self.peak = {"app_mib": 0.0, "model_servers_mib": 0.0}
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.wait(0.5):
            try:
                procs = [self.root, *self.root.children(recursive=True)]
                app = servers = 0
                for p in procs:
                    rss = p.memory_info().rss
                    if any("llama_cpp.server" in part for part in p.cmdline()):
                        servers += rss
                    else:
                        app += rss
            except psutil.Error:
                continue
            self.peak["app_mib"] = max(self.peak["app_mib"], app / 2**20)
            self.peak["model_servers_mib"] = max(self.peak["model_servers_mib"], servers / 2**20)


def wait_for_saved(page: Any, previous: str | None, timeout_s: float) -> str | None:
    """The id of the comparison saved after `previous`, or None on timeout / a page exception."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for text in page.get_by_text(SAVED).all_inner_texts():
            m = SAVED.search(text)
            if m and m.group(1) != previous:
                return m.group(1)
        if page.get_by_test_id("stException").count():
            return None
        time.sleep(0.5)
    return None


def asker(app: RunningApp, n: int, domain: str, questions: list[str], until: float, out: dict, tmp: Path) -> None:
    """One viewer: asks the presets in turn until `until`; records ids, click-to-last-answer times, errors."""
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as pw:
        browser = chromium(pw, tmp / f"profile-{n}")
        try:
            page = browser.new_page()
            page.goto(app.url, wait_until="domcontentloaded")
            expect(page.get_by_role("button", name="Compare")).to_be_visible(timeout=900_000)
            select(page, "Domain", domain)
            previous, i = None, n  # sessions start at different questions
            while time.monotonic() < until:
                question = questions[i % len(questions)]
                i += 1
                select(page, "Preset question", question)
                expect(page.get_by_label("Question", exact=True)).to_have_value(question, timeout=30_000)
                clicked = time.perf_counter()
                page.get_by_role("button", name="Compare").click()
                saved = wait_for_saved(page, previous, ANSWER_TIMEOUT_S)
                if saved is None:
                    out["errors"].append(f"session {n}: no comparison saved for {question!r}")
                    page.reload(wait_until="domcontentloaded")
                    expect(page.get_by_role("button", name="Compare")).to_be_visible(timeout=120_000)
                    select(page, "Domain", domain)
                    continue
                out["timings"].append(time.perf_counter() - clicked)
                out["ids"].append(saved)
                previous = saved
        except Exception as exc:  # noqa: BLE001 - reported in the JSON, the other sessions go on
            out["errors"].append(f"session {n}: {type(exc).__name__}: {str(exc)[:300]}")
        finally:
            browser.close()


def uploader(app: RunningApp, until: float, out: dict, tmp: Path) -> None:
    """The fifth viewer: uploads two small documents into a new domain, again and again."""
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as pw:
        browser = chromium(pw, tmp / "profile-uploader")
        try:
            page = browser.new_page()
            batch, run_tag = 0, time.strftime("%H%M%S")  # a new domain per batch, also across runs
            while time.monotonic() < until:
                batch += 1
                files = []
                for k in range(2):
                    f = tmp / f"upload_{batch}_{k}.md"
                    f.write_text(f"# Notice {batch}.{k}\n\nThe load-test office {batch}-{k} opens at {7 + k}:30 am.\n")
                    files.append(str(f))
                page.goto(f"{app.url}/documents_page", wait_until="domcontentloaded")
                expect(page.get_by_role("heading", name="Documents")).to_be_visible(timeout=900_000)
                select(page, "Domain", "(new domain…)")
                page.get_by_label("New domain name").fill(f"load_uploads_{run_tag}_{batch}")
                page.get_by_label("New domain name").press("Enter")
                # files given while that rerun is in flight are dropped by the page: wait for it to end
                empty = page.get_by_text(re.compile(rf"No documents in load_uploads_{run_tag}_{batch} yet"))
                expect(empty).to_be_visible(timeout=60_000)
                page.get_by_test_id("stFileUploaderDropzoneInput").set_input_files(files)
                expect(page.get_by_text(Path(files[-1]).name).first).to_be_visible(timeout=60_000)
                add = page.get_by_role("button", name="Add to index")
                expect(add).to_be_enabled(timeout=60_000)  # once the page has taken the new domain and the files
                add.click()
                done = page.get_by_text(re.compile(r"(\d+) stored, \d+ unchanged, \d+ refused"))
                expect(done.first).to_be_visible(timeout=ANSWER_TIMEOUT_S * 1000)
                stored = int(re.search(r"(\d+) stored", done.first.inner_text()).group(1))
                out["batches"] += 1
                out["stored"] += stored
                if stored != len(files):
                    out["errors"].append(f"upload batch {batch}: {stored} of {len(files)} stored")
        except Exception as exc:  # noqa: BLE001
            out["errors"].append(f"uploader: {type(exc).__name__}: {str(exc)[:300]}")
        finally:
            browser.close()


def history_outcomes(data_dir: Path, ids: list[str]) -> dict[str, int]:
    """Column outcomes of the saved comparisons: errors, answers cut short, empty answers."""
    counts = {"columns": 0, "column_errors": 0, "answers_cut_short": 0, "empty_answers": 0}
    for record_id in ids:
        path = data_dir / "history" / f"{record_id}.json"
        if not path.is_file():
            counts["column_errors"] += 1
            continue
        for result in json.loads(path.read_text())["results"].values():
            counts["columns"] += 1
            counts["column_errors"] += bool(result.get("error"))
            counts["answers_cut_short"] += bool(result.get("cut_short"))
            counts["empty_answers"] += not result.get("answer") and not result.get("notice")
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=300, help="seconds during which questions are asked")
    parser.add_argument("--sessions", type=int, default=4, help="browser sessions asking questions")
    parser.add_argument("--domain", default="hr_handbook")
    parser.add_argument("--chroma-path", type=Path, help="reuse built indexes (default: build fresh ones)")
    parser.add_argument("--data-dir", type=Path, help="reuse a data folder, e.g. with the domain's adapter trained")
    parser.add_argument("--no-upload", action="store_true", help="without the uploading session")
    args = parser.parse_args()

    questions = [r.question for r in domain_qa(REPO / "corpora", args.domain, "test") if r.answerable]
    with tempfile.TemporaryDirectory(prefix="triptych-load-") as tmp_name:
        tmp = Path(tmp_name)
        env = {"TRIPTYCH_AUTOTRAIN": "false"}  # questions only: training is measured by its own benchmark
        with running_app(tmp, chroma_path=args.chroma_path, data_dir=args.data_dir, extra_env=env) as app:
            sampler = Sampler(app)
            sampler.start()
            started = time.monotonic()
            # the demo indexes are built on first start: the clock starts once questions can be asked
            from playwright.sync_api import expect, sync_playwright

            with sync_playwright() as pw:
                browser = chromium(pw, tmp / "profile-ready")
                page = browser.new_page()
                page.goto(app.url, wait_until="domcontentloaded")
                expect(page.get_by_role("button", name="Compare")).to_be_visible(timeout=900_000)
                browser.close()
            ready_s = time.monotonic() - started
            until = time.monotonic() + args.duration
            outs = [{"ids": [], "timings": [], "errors": []} for _ in range(args.sessions)]
            up = {"batches": 0, "stored": 0, "errors": []}
            threads = [
                threading.Thread(target=asker, args=(app, n, args.domain, questions, until, outs[n], tmp))
                for n in range(args.sessions)
            ]
            if not args.no_upload:
                threads.append(threading.Thread(target=uploader, args=(app, until, up, tmp)))
            for t in threads:
                t.start()
            for t in threads:
                t.join(timeout=args.duration + ANSWER_TIMEOUT_S + 120)
            sampler.stop.set()
            data_dir = args.data_dir or tmp / "data"
            ids = [i for o in outs for i in o["ids"]]
            timings = [t for o in outs for t in o["timings"]]
            outcomes = history_outcomes(data_dir, ids)
            errors = [e for o in outs for e in o["errors"]] + up["errors"]
            report = {
                "benchmark": "load_app",
                "sessions": args.sessions,
                "uploading_session": not args.no_upload,
                "domain": args.domain,
                "duration_s": args.duration,
                "ready_s": round(ready_s, 1),
                "comparisons_finished": len(ids),
                "errors": len(errors) + outcomes["column_errors"],
                "answers_cut_short": outcomes["answers_cut_short"],
                "empty_answers": outcomes["empty_answers"],
                "columns": outcomes["columns"],
                "time_to_last_answer_s": {
                    name: round(value, 2) if (value := percentile(timings, q)) is not None else None
                    for name, q in (("p50", 0.5), ("p95", 0.95), ("max", 1.0))
                },
                "uploads": {"batches": up["batches"], "documents_stored": up["stored"]},
                "peak_rss_mib": {k: round(v) for k, v in sampler.peak.items()},
                "error_messages": errors[:20],
                "app_log_tail": app.log_tail(1500) if errors else "",
            }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
