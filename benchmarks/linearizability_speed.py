"""How fast the kit's linearizability checker is, in operations per second.

Builds a linearizable history by construction (each operation gets a linearization point inside
its own interval; results come from replaying the points in order through the model), with
several keys and several clients whose calls overlap, then times ``check_history`` on it. A
second run plants one lost update (two CAS winners on one version) and times finding and
shrinking it. Standard library only; deterministic for a given ``--seed``.

    python benchmarks/linearizability_speed.py [--ops 1000] [--keys 4] [--clients 6]
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from dataclasses import replace

from conformance.linearizability import Op, Result, check_history
from conformance.model import KVModel


def build_history(ops: int, keys: int, clients: int, rng: random.Random) -> list[Op]:
    """``ops`` operations from ``clients`` overlapping clients, linearizable by construction."""
    planned: list[tuple[float, float, float, str, str, bytes, int]] = []
    per_client = -(-ops // clients)
    for client in range(clients):
        now = rng.random()
        for number in range(per_client):
            invoke = now
            point = invoke + rng.uniform(0.1, 1.0)
            complete = point + rng.uniform(0.1, 1.0)
            kind = rng.choices(["get", "put", "cas", "delete"], weights=[4, 2, 3, 1])[0]
            key = f"bench:k{rng.randrange(keys)}"
            planned.append((point, invoke, complete, kind, key, f"c{client}.{number}".encode(), 0))
            now = complete + rng.uniform(0.0, 0.3)
    planned = sorted(planned)[:ops]
    model = KVModel(now=0.0)
    history: list[Op] = []
    for _point, invoke, complete, kind, key, data, _ in planned:
        result: Result
        expected = 0
        if kind == "get":
            result = model.get(key)
        elif kind == "put":
            result = model.put(key, data, None)
        elif kind == "cas":
            current = model.get(key)
            version = 0 if current is None else current.version
            expected = version if rng.random() < 0.7 else max(0, version - 1)
            result = model.put_if_version(key, data, expected, None)
        else:
            result = model.delete(key)
        history.append(Op(kind, key, invoke, complete, result, data, expected))  # type: ignore[arg-type]
    return history


def plant_lost_update(history: list[Op]) -> list[Op]:
    """Make a successful CAS claim the same version as the successful CAS just before it on
    its key: two winners on one version. Only where no delete of that key overlaps the pair,
    so that the version cannot have gone back in between and the result is surely wrong."""
    for index, first in enumerate(history):
        if first.kind != "cas" or not isinstance(first.result, int):
            continue
        for second in history[index + 1 :]:
            if second.key != first.key or second.kind != "cas":
                continue
            if second.expected == first.expected + 1 and _no_delete_overlaps(
                history, first, second
            ):
                bad = replace(second, expected=first.expected, result=first.result)
                return [bad if other is second else other for other in history]
            break
    raise SystemExit("no CAS pair to corrupt; try another --seed")


def _no_delete_overlaps(history: list[Op], first: Op, second: Op) -> bool:
    end = second.complete if second.complete is not None else float("inf")
    return not any(
        op.kind == "delete"
        and op.key == first.key
        and op.invoke <= end
        and (op.complete is None or op.complete >= first.invoke)
        for op in history
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ops", type=int, default=1000)
    parser.add_argument("--keys", type=int, default=4)
    parser.add_argument("--clients", type=int, default=6)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    history = build_history(args.ops, args.keys, args.clients, rng)
    overlap = _mean_overlap(history)
    timings = []
    for _ in range(args.repeat):
        started = time.perf_counter()
        result = check_history(history)
        timings.append(time.perf_counter() - started)
        assert result.status == "linearizable", result
    best = min(timings)
    print(
        f"linearizable history: {len(history)} ops, {args.keys} keys, {args.clients} clients, "
        f"{overlap:.1f} calls in flight on average"
    )
    print(
        f"  check: best {best * 1000:.1f} ms, median {statistics.median(timings) * 1000:.1f} ms"
        f" -> {len(history) / best:,.0f} ops/s"
    )
    corrupt = plant_lost_update(history)
    started = time.perf_counter()
    result = check_history(corrupt)
    elapsed = time.perf_counter() - started
    assert result.status == "violation", result
    assert result.window is not None
    print(
        f"with one lost update planted: violation found and shrunk to a "
        f"{len(result.window.ops)}-op window in {elapsed * 1000:.1f} ms"
    )


def _mean_overlap(history: list[Op]) -> float:
    """Average number of calls in flight, sampled at every invocation."""
    total = 0
    for op in history:
        total += sum(
            1
            for other in history
            if other.invoke <= op.invoke and (other.complete or float("inf")) > op.invoke
        )
    return total / len(history)


if __name__ == "__main__":
    main()
