"""list_tests — prints the id (module.Class.method) of every test in
tests/mta, ';'-separated, for tests/mta/CMakeLists.txt.  Exits 1 if a test
module fails to import.  Owns nothing else."""

import os
import sys
import unittest


def ids(suite):
    for test in suite:
        if isinstance(test, unittest.TestSuite):
            yield from ids(test)
        else:
            yield test.id()


def main() -> int:
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path.insert(0, here)
    found = sorted(ids(unittest.defaultTestLoader.discover(
        here, pattern="test_*.py", top_level_dir=here)))
    broken = [t for t in found if t.startswith("unittest.loader.")]
    if broken or not found:
        print("cannot load: " + ", ".join(broken), file=sys.stderr)
        return 1
    print(";".join(found))
    return 0


if __name__ == "__main__":
    sys.exit(main())
