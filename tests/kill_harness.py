"""Runs trainings in child processes that stop themselves at exact moments (the kill tests' server).

Started once per test module (``python tests/kill_harness.py``): it imports hourglass and torch once,
then reads one JSON request per line on stdin and answers one JSON line on stdout. Each request runs
``hourglass.train`` or ``hourglass.resume`` in a forked child, which sends itself ``signal`` at the
``nth`` time it reaches ``point``:

* ``step``: the trainer has just finished an optimizer step (each phase of an adversarial model
  counts), a moment inside an epoch;
* any other name: a durable step of a write (``hourglass.io.FAULT_HOOK``): a checkpoint part,
  the checkpoint's rename, the top-level files, the final save (``wrote model.safetensors``, ...).

``KILL`` is ``kill -9``; ``TERM`` is the polite stop (training finishes its step and checkpoints). The
answer gives the child's exit: ``{"exit": code}`` (0 done, 3 ``TrainingInterrupted``, 4 another
``HourglassError``, 5 anything else, with the message in ``"error"``) or ``{"signal": number}``.
Forking after importing torch is safe here because nothing has run a torch operation in this process
(and ``OMP_NUM_THREADS=1``), so no thread pool exists to be lost in the child.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import traceback

os.environ.setdefault("OMP_NUM_THREADS", "1")

# sklearn.datasets, torch._dynamo (the optimizers') and the metrics are imported here once rather than
# in every child: what training and evaluation load on first use.
import sklearn.datasets  # noqa: E402, F401
import torch  # noqa: E402
import torch._dynamo  # noqa: E402, F401

import hourglass  # noqa: E402
import hourglass.evaluate.metrics  # noqa: E402, F401
from hourglass import io  # noqa: E402
from hourglass.errors import HourglassError, TrainingInterrupted  # noqa: E402
from hourglass.run import fit  # noqa: E402
from hourglass.training.trainer import Trainer  # noqa: E402


def child(req: dict, result_path: str) -> int:
    torch.set_num_threads(1)
    point, nth, sig = req.get("point"), int(req.get("nth", 1)), getattr(signal, f"SIG{req.get('signal', 'KILL')}")
    seen = {"n": 0}

    def reached(name: str) -> None:
        if name == point:
            seen["n"] += 1
            if seen["n"] == nth:
                os.kill(os.getpid(), sig)

    if point == "step":
        original = Trainer._step

        def step(self, phase, batch):
            out = original(self, phase, batch)
            reached("step")
            return out

        Trainer._step = step
    elif point:
        io.FAULT_HOOK = reached
    fn = {"train": fit.train, "resume": fit.resume}[req["fn"]]
    try:
        fn(*req.get("args", []), **req.get("kwargs", {}))
        code, error = 0, None
    except TrainingInterrupted as e:
        code, error = 3, str(e)
    except HourglassError as e:
        code, error = 4, str(e)
    except BaseException as e:  # noqa: BLE001 - reported to the test, which fails on it
        code, error = 5, "".join(traceback.format_exception(e))
    with open(result_path, "w") as f:
        json.dump({"error": error}, f)
    return code


def main() -> None:
    for line in sys.stdin:
        req = json.loads(line)
        result_path = req["result"]
        pid = os.fork()
        if pid == 0:
            code = 5
            try:
                sys.stdin = open(os.devnull)
                sys.stdout = sys.stderr
                code = child(req, result_path)
            finally:
                sys.stderr.flush()
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        answer: dict = {"id": req.get("id")}
        if os.WIFSIGNALED(status):
            answer["signal"] = os.WTERMSIG(status)
        else:
            answer["exit"] = os.WEXITSTATUS(status)
        if os.path.exists(result_path):
            with open(result_path) as f:
                answer.update(json.load(f))
        print(json.dumps(answer), flush=True)


if __name__ == "__main__":
    assert hourglass.__version__
    main()
