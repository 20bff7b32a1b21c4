"""The embedded llama.cpp server, for real: the bundled SmolLM2 answering through openai and ChatOpenAI."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import openai
import psutil
import pytest
from langchain_core.messages import HumanMessage, SystemMessage

from triptych.llm.factory import make_chat_model, resolve_endpoint
from triptych.llm.generate import stream_answer
from triptych.llm.server import (
    LocalModels,
    LocalModelServer,
    ModelServerError,
    ServerSpec,
    TokenCounter,
    bundled_model_path,
)
from triptych.settings import Settings, load_settings

pytestmark = pytest.mark.integration

QUESTION = [{"role": "user", "content": "What is the capital of France? Answer in one word."}]


def client_for(server: LocalModelServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.base_url, api_key="unused", timeout=60)


def test_non_streaming_completion_reports_usage(local_models: LocalModels) -> None:
    server = local_models.base()
    reply = client_for(server).chat.completions.create(
        model=server.spec.alias, messages=QUESTION, max_tokens=16, temperature=0
    )
    assert reply.choices[0].message.content.strip()
    assert reply.model == server.spec.alias
    assert reply.usage.prompt_tokens > 5 and reply.usage.completion_tokens > 0


def test_streaming_completion_arrives_in_pieces(local_models: LocalModels) -> None:
    server = local_models.base()
    stream = client_for(server).chat.completions.create(
        model=server.spec.alias, messages=QUESTION, max_tokens=24, temperature=0, stream=True
    )
    pieces = [c.choices[0].delta.content for c in stream if c.choices and c.choices[0].delta.content]
    assert len(pieces) >= 2
    assert "".join(pieces).strip()


def test_chat_openai_invoke_and_stream_with_usage(local_models: LocalModels, clean_env: Path) -> None:
    settings = load_settings()
    endpoint = resolve_endpoint(settings, "prompt", local_models)
    assert endpoint.is_local and endpoint.base_url == local_models.base().base_url
    chat = make_chat_model(endpoint, settings, max_tokens=24)
    messages = [
        SystemMessage("Answer in one short sentence."),
        HumanMessage("What is the capital of France?"),
    ]

    reply = chat.invoke(messages)
    assert reply.text.strip()

    tokens: list[str] = []
    result = asyncio.run(
        stream_answer(chat, messages, endpoint.model, on_token=tokens.append, usage_counter=endpoint.usage_counter)
    )
    assert len(tokens) >= 2 and result.answer == "".join(tokens).strip()
    assert result.ttft_s is not None and 0 < result.ttft_s <= result.latency_s
    # the counts must agree with what the server itself reports for the same request
    raw = client_for(local_models.base()).chat.completions.create(
        model=endpoint.model,
        messages=[
            {"role": "system", "content": "Answer in one short sentence."},
            {"role": "user", "content": "What is the capital of France?"},
        ],
        max_tokens=24,
        temperature=0,
    )
    assert result.prompt_tokens == raw.usage.prompt_tokens
    assert result.completion_tokens == raw.usage.completion_tokens


def test_unknown_model_name_is_rejected(local_models: LocalModels, clean_env: Path, monkeypatch) -> None:
    with pytest.raises(ModelServerError, match="unknown model 'gpt-4o'"):
        local_models.base().require_model("gpt-4o")
    monkeypatch.setenv("TRIPTYCH_PROMPT__MODEL", "local/some-other-model")
    with pytest.raises(ModelServerError, match="serves only"):
        resolve_endpoint(load_settings(), "prompt", local_models)


def test_stop_leaves_no_process(tmp_path: Path) -> None:
    server = LocalModelServer(ServerSpec(bundled_model_path(), "probe", n_threads=1)).start()
    pid, port = server.pid, server.port
    assert pid is not None and psutil.pid_exists(pid)
    server.stop()
    assert not psutil.pid_exists(pid)
    with socket.socket() as sock:
        assert sock.connect_ex(("127.0.0.1", port)) != 0


def test_server_dies_with_its_parent(tmp_path: Path) -> None:
    """Even a Triptych killed with SIGKILL leaves no llama.cpp server behind."""
    script = textwrap.dedent("""
        from pathlib import Path
        from triptych.llm.server import LocalModelServer, ServerSpec, bundled_model_path
        s = LocalModelServer(ServerSpec(bundled_model_path(), "orphan-probe", n_threads=1)).start()
        print(s.pid, flush=True)
        import time; time.sleep(600)
    """)
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        child_pid = int(parent.stdout.readline())
        assert psutil.pid_exists(child_pid)
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait(10)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and psutil.pid_exists(child_pid):
            if psutil.Process(child_pid).status() == psutil.STATUS_ZOMBIE:
                break
            time.sleep(0.2)
        alive = psutil.pid_exists(child_pid) and psutil.Process(child_pid).status() != psutil.STATUS_ZOMBIE
        assert not alive, "the model server outlived its parent"
    finally:
        parent.kill()


def test_missing_gguf_names_the_setting(tmp_path: Path) -> None:
    with pytest.raises(ModelServerError, match="TRIPTYCH_LOCAL_MODEL_PATH"):
        LocalModelServer(ServerSpec(tmp_path / "missing.gguf", "x")).start()


def test_corrupt_gguf_reports_the_server_log(tmp_path: Path) -> None:
    bad = tmp_path / "junk.gguf"
    bad.write_bytes(b"GGUF" + os.urandom(4096))
    with pytest.raises(ModelServerError, match="exited with code"):
        LocalModelServer(ServerSpec(bad, "junk", n_threads=1), startup_timeout_s=60).start()


def test_taken_port_is_a_clear_error() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(1)
        port = sock.getsockname()[1]
        with pytest.raises(ModelServerError, match=f"port {port} .* already in use.*TRIPTYCH_LOCAL_PORT"):
            LocalModelServer(ServerSpec(bundled_model_path(), "x", port=port)).start()


def test_adapter_for_another_architecture_is_refused(tmp_path: Path) -> None:
    import gguf
    import numpy as np

    adapter = tmp_path / "gpt2-adapter.gguf"
    writer = gguf.GGUFWriter(str(adapter), "gpt2")
    writer.add_string("general.type", "adapter")
    writer.add_tensor("blk.0.attn_q.weight.lora_a", np.zeros((4, 8), dtype=np.float16))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    with pytest.raises(ModelServerError, match="made for a 'gpt2' model but the base model .* is 'llama'"):
        LocalModelServer(ServerSpec(bundled_model_path(), "ft", lora_path=adapter)).start()


def test_cli_ask_prints_json_with_an_answer(clean_env: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRIPTYCH_")}
    proc = subprocess.run(
        [sys.executable, "-m", "triptych.cli", "ask", "What causes the seasons?"],
        capture_output=True, text=True, timeout=180, env=env, cwd=clean_env,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)["pipelines"]["prompt"]
    assert out["answer"].strip() and out["error"] is None
    assert out["model"] == Settings(_env_file=None).local_model_alias
    assert 0 < out["ttft_s"] <= out["total_s"]
    assert out["prompt_tokens"] > 0 and out["completion_tokens"] > 0
    assert out["messages"][-1] == {"role": "user", "content": "What causes the seasons?"}


def test_cli_doctor_starts_and_checks_the_local_server(clean_env: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "triptych.cli", "doctor"],
        capture_output=True,
        text=True,
        timeout=180,
        cwd=clean_env,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "local server" in proc.stdout and "ready in" in proc.stdout
    assert "FAIL" not in proc.stdout


def test_cli_reports_bad_configuration_and_exits_2(clean_env: Path) -> None:
    env = {**os.environ, "TRIPTYCH_PROMPT__MODEL": "openai/gpt-4o-mini"}
    env.pop("OPENAI_API_KEY", None)
    proc = subprocess.run(
        [sys.executable, "-m", "triptych.cli", "ask", "hi"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        cwd=clean_env,
    )
    assert proc.returncode == 2
    assert "set OPENAI_API_KEY" in proc.stderr


def test_token_counters_load_once_and_leave_stdout_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    """Loads that overlap in threads used to leave fd 1 and 2 on /dev/null: a CLI then printed nothing."""
    import triptych.llm.server as server_module

    monkeypatch.setattr(server_module, "_COUNTERS", {})  # force real loads in this test
    fds_before = [(os.fstat(fd).st_dev, os.fstat(fd).st_ino) for fd in (1, 2)]
    barrier, counters = threading.Barrier(6), []

    def build() -> None:
        barrier.wait()
        counters.append(TokenCounter.for_model(bundled_model_path()))

    threads = [threading.Thread(target=build) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(counters) == 6 and len({id(c) for c in counters}) == 1
    assert [(os.fstat(fd).st_dev, os.fstat(fd).st_ino) for fd in (1, 2)] == fds_before
    assert counters[0].count([{"role": "user", "content": "Hi"}], "Hello there")[1] == 2
