"""Send tasks to the worker at a steady rate, bounded in count and time."""

import argparse
import sys
import time

from tasks import add


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("-n", "--tasks", type=int, default=200, help="tasks to send")
    p.add_argument("-r", "--rate", type=float, default=40.0, help="tasks per second")
    args = p.parse_args()
    if args.tasks <= 0 or args.rate <= 0:
        p.error("--tasks and --rate must be positive")
    start = time.monotonic()
    for i in range(args.tasks):
        add.delay(i, i)  # fire and forget: nobody reads the result
        next_at = start + (i + 1) / args.rate
        time.sleep(max(0.0, next_at - time.monotonic()))
    print(f"sent {args.tasks} tasks in {time.monotonic() - start:.1f}s", file=sys.stderr)


if __name__ == "__main__":
    main()
