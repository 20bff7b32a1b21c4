"""Install-time check: llama.cpp, as built here, can load the local model and generate a token.

Run in a child process, because a llama.cpp built for the wrong CPU dies with SIGSEGV/SIGILL
rather than raising.
"""

from __future__ import annotations

import subprocess
import sys

from triptych.llm.server import bundled_model_path

CHILD = """
import sys
from llama_cpp import Llama
llm = Llama(model_path=sys.argv[1], n_threads=1, n_ctx=256, verbose=False)
out = llm("The capital of France is", max_tokens=2)
print(repr(out["choices"][0]["text"]))
"""


def main() -> int:
    """Generate two tokens with the bundled model; non-zero exit (with the reason) if that fails."""
    path = bundled_model_path()
    proc = subprocess.run([sys.executable, "-c", CHILD, str(path)], capture_output=True, text=True, timeout=120)
    if proc.returncode != 0:
        print(f"llama.cpp smoke test failed (exit {proc.returncode}):\n{proc.stderr[-1500:]}", file=sys.stderr)
        return 1
    print(f"llama.cpp generates with {path.name}: {proc.stdout.strip()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
