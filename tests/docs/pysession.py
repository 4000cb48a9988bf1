"""One Python session for one documentation page: each block, read as a JSON line on stdin, runs in
the same namespace as the blocks before it (as pasted one after another into one interpreter); the
answer is a JSON line on stdout. Run with the project's interpreter in the example's directory."""
import contextlib
import io
import json
import sys
import traceback

namespace: dict = {"__name__": "__main__"}
answers = sys.stdout
for line in sys.stdin:
    block = json.loads(line)
    out = io.StringIO()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
            exec(compile(block["code"], block["where"], "exec"), namespace)
        answer = {"ok": True, "output": out.getvalue()}
    except BaseException:  # noqa: BLE001 - any failure of the example is the answer
        answer = {"ok": False, "output": out.getvalue(), "error": traceback.format_exc()}
    answers.write(json.dumps(answer) + "\n")
    answers.flush()
