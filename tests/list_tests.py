"""list_tests — prints the id (module.Class.method) of every unittest test
in the folder given as its argument (test_*.py), ';'-separated, for
rtm_python_tests() in tests/CMakeLists.txt.  Exits 1 if a test module fails
to import or there is none.  Owns nothing else."""

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
    if len(sys.argv) != 2:
        print("usage: list_tests.py DIR", file=sys.stderr)
        return 2
    here = os.path.abspath(sys.argv[1])
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
