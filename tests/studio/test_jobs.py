"""One job at a time (`texkit.studio.jobs.DeviceQueue`), and reading a run folder and a command's log."""

from __future__ import annotations

import threading
import time

from texkit.studio.jobs import DeviceQueue, last_error_line, read_metrics


def test_jobs_hold_the_device_one_at_a_time_in_the_order_they_asked():
    queue = DeviceQueue()
    order: list[str] = []
    inside = []
    heard: dict[str, list[str]] = {}
    first_in = threading.Event()

    def job(name: str, hold: float) -> None:
        with queue.turn(name, lambda line: heard.setdefault(name, []).append(line)):
            inside.append(name)
            assert len(inside) == 1, inside  # nobody else holds the device
            order.append(name)
            first_in.set()
            time.sleep(hold)
            inside.remove(name)

    threads = [threading.Thread(target=job, args=("painting", 1.5))]
    threads[0].start()
    first_in.wait(5)
    for name in ("scoring", "fine-tune run-1"):
        threads.append(threading.Thread(target=job, args=(name, 0.1)))
        threads[-1].start()
        time.sleep(0.2)  # asked in this order
    assert queue.describe() == "painting, 2 waiting"
    for thread in threads:
        thread.join(10)
    assert order == ["painting", "scoring", "fine-tune run-1"]
    assert heard["scoring"][0] == "waiting for the device: painting is running"
    assert heard["fine-tune run-1"][0] == "waiting for the device: painting is running, 1 job(s) ahead"
    assert queue.describe() == "idle"


def test_read_metrics_skips_a_line_being_written(tmp_path):
    (tmp_path / "metrics.jsonl").write_text('{"step": 1}\n{"step": 2}\n{"step": 3, "rew')
    assert [m["step"] for m in read_metrics(tmp_path)] == [1, 2]
    assert read_metrics(tmp_path / "missing") == []


def test_last_error_line_is_the_clis_message(tmp_path):
    log = tmp_path / "run.log"
    log.write_text("texkit: note: something\nstep 1/3\ntexkit: error: reward 'jpeg_compressibility' is not differentiable; use score\n")
    assert last_error_line(log) == "reward 'jpeg_compressibility' is not differentiable; use score"
    log.write_text("step 1/3\n")
    assert last_error_line(log) is None
