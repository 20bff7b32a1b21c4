from __future__ import annotations

import os
from pathlib import Path

import pytest

from triptych.settings import ConfigError, EndpointConfig, load_settings, load_tracing_env


def test_defaults_use_the_embedded_model_for_every_pipeline(clean_env: Path) -> None:
    s = load_settings()
    assert [s.endpoint(p).is_local for p in ("prompt", "rag", "finetuned")] == [True, True, True]
    assert s.chroma_mode == "embedded"
    assert s.chroma_path == Path("indexes")
    assert s.embedding_model == "all-MiniLM-L6-v2"
    assert s.local_threads >= 1


def test_env_var_sets_nested_endpoint_fields(clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRIPTYCH_RAG__MODEL", "vllm/Qwen2.5-1.5B-Instruct")
    monkeypatch.setenv("TRIPTYCH_RAG__BASE_URL", "http://gpu-box:8000/v1")
    monkeypatch.setenv("TRIPTYCH_RAG__API_KEY_ENV", "VLLM_API_KEY")
    s = load_settings()
    assert s.rag.provider.name == "vllm"
    assert s.rag.model_name == "Qwen2.5-1.5B-Instruct"
    assert s.rag.base_url == "http://gpu-box:8000/v1"
    # the other pipelines are untouched: each endpoint is independent
    assert s.prompt.is_local and s.finetuned.is_local


def test_environment_wins_over_dotenv(clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (clean_env / ".env").write_text("TRIPTYCH_TOP_K=7\nTRIPTYCH_MAX_TOKENS=99\n")
    monkeypatch.setenv("TRIPTYCH_TOP_K", "3")
    s = load_settings()
    assert s.top_k == 3  # environment
    assert s.max_tokens == 99  # .env


def test_bad_value_names_the_variable(clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRIPTYCH_TOP_K", "lots")
    with pytest.raises(ConfigError, match="TRIPTYCH_TOP_K"):
        load_settings()


def test_unknown_provider_lists_the_supported_ones(clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRIPTYCH_PROMPT__MODEL", "anthropic/claude")
    with pytest.raises(ConfigError) as err:
        load_settings()
    msg = str(err.value)
    assert "TRIPTYCH_PROMPT__MODEL" in msg and "unsupported provider 'anthropic'" in msg
    assert "local, openai, ollama, vllm, compatible" in msg


def test_vllm_without_base_url_says_which_variable(clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRIPTYCH_FINETUNED__MODEL", "vllm/my-lora")
    with pytest.raises(ConfigError, match="set TRIPTYCH_FINETUNED__BASE_URL"):
        load_settings()


def test_custom_url_may_not_take_the_openai_key(clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRIPTYCH_RAG__MODEL", "openai/gpt-4o-mini")
    monkeypatch.setenv("TRIPTYCH_RAG__BASE_URL", "https://proxy.example.com/v1")
    with pytest.raises(ConfigError, match="only ever sent to api.openai.com"):
        load_settings()


def test_missing_key_names_its_variable(clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRIPTYCH_PROMPT__MODEL", "openai/gpt-4o-mini")
    s = load_settings()
    with pytest.raises(ConfigError, match="set OPENAI_API_KEY"):
        s.api_key("prompt")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    assert s.api_key("prompt") == "sk-test"


def test_key_can_come_from_dotenv(clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (clean_env / ".env").write_text("TRIPTYCH_PROMPT__MODEL=openai/gpt-4o-mini\nOPENAI_API_KEY=sk-from-dotenv\n")
    s = load_settings()
    assert s.api_key("prompt") == "sk-from-dotenv"


def test_local_endpoint_needs_no_key(clean_env: Path) -> None:
    assert load_settings().api_key("rag") is None


def test_chunk_overlap_must_be_smaller_than_size(clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRIPTYCH_CHUNK_SIZE", "200")
    monkeypatch.setenv("TRIPTYCH_CHUNK_OVERLAP", "200")
    with pytest.raises(ConfigError, match="TRIPTYCH_CHUNK_OVERLAP"):
        load_settings()


def test_missing_model_path_is_refused(clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRIPTYCH_LOCAL_MODEL_PATH", str(clean_env / "nope.gguf"))
    with pytest.raises(ConfigError, match="TRIPTYCH_LOCAL_MODEL_PATH"):
        load_settings()


def test_bad_base_url_is_refused(clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRIPTYCH_PROMPT__MODEL", "compatible/x")
    monkeypatch.setenv("TRIPTYCH_PROMPT__BASE_URL", "gpu-box:8000")
    with pytest.raises(ConfigError, match="TRIPTYCH_PROMPT__BASE_URL"):
        load_settings()


def test_check_keys_names_the_first_missing_variable(clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRIPTYCH_FINETUNED__MODEL", "openai/ft:gpt-4o-mini:acme::x1")
    s = load_settings()
    s.check_keys(("prompt", "rag"))  # local endpoints need no key
    with pytest.raises(ConfigError, match="the finetuned pipeline .* set OPENAI_API_KEY"):
        s.check_keys()


def test_tracing_variables_in_dotenv_reach_the_environment_without_overriding(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("LANGSMITH_TRACING", "LANGSMITH_PROJECT", "TRIPTYCH_TOP_K"):
        monkeypatch.setenv(name, "x")  # recorded, so whatever load_tracing_env sets is undone after the test
        monkeypatch.delenv(name)
    monkeypatch.setenv("LANGSMITH_PROJECT", "from-the-shell")
    (clean_env / ".env").write_text("LANGSMITH_TRACING=true\nLANGSMITH_PROJECT=from-dotenv\nTRIPTYCH_TOP_K=7\n")
    assert load_tracing_env() == ["LANGSMITH_TRACING"]
    assert os.environ["LANGSMITH_TRACING"] == "true"
    assert os.environ["LANGSMITH_PROJECT"] == "from-the-shell"
    assert "TRIPTYCH_TOP_K" not in os.environ  # settings read .env themselves


def test_an_endpoint_resolves_its_url_and_key_variable(clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ollama = EndpointConfig(model="ollama/llama3.2")
    assert (ollama.endpoint_url(), ollama.key_env, ollama.api_key("x")) == ("http://127.0.0.1:11434/v1", None, None)
    vllm = EndpointConfig(model="vllm/q", base_url="http://gpu:8000/v1/", api_key_env="VLLM_KEY")
    assert (vllm.endpoint_url(), vllm.key_env) == ("http://gpu:8000/v1", "VLLM_KEY")
    with pytest.raises(ConfigError, match=r"the judge \(q\) needs an API key: set VLLM_KEY"):
        vllm.api_key("the judge (q)")
    monkeypatch.setenv("VLLM_KEY", "k")
    assert vllm.api_key("the judge (q)") == "k"
    with pytest.raises(ValueError, match="TRIPTYCH_JUDGE_BASE_URL"):
        EndpointConfig(model="compatible/x").check("TRIPTYCH_JUDGE", sep="_")


def test_doctor_never_prints_a_password_from_a_base_url(clean_env, monkeypatch) -> None:
    from triptych.doctor import check_endpoint

    monkeypatch.setenv("TRIPTYCH_RAG__MODEL", "compatible/m")
    monkeypatch.setenv("TRIPTYCH_RAG__BASE_URL", "http://user:s3cret@127.0.0.1:9/v1")
    check = check_endpoint(load_settings(), "rag")
    assert check.status == "fail"
    assert "s3cret" not in f"{check.detail} {check.fix}" and "127.0.0.1:9" in check.detail
