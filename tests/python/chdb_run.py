"""Runs ClickHouse statements on chdb (a modern ClickHouse engine, in process)
and prints the results of the queries as JSON.

Input (stdin): {"statements": ["CREATE ...", "INSERT ..."], "queries": ["SELECT ..."]}
Output (stdout): {"version": "...", "results": [[{row}, ...], ...]}
Any failing statement exits 1 with the statement and the error on stderr.
"""

import json
import sys
import tempfile

from chdb import session


def main() -> int:
    job = json.load(sys.stdin)
    s = session.Session(tempfile.mkdtemp(prefix="strata_chdb_"))
    for st in job.get("statements", []):
        try:
            s.query(st)
        except Exception as e:  # noqa: BLE001 - report every engine error
            print(f"statement failed: {e}\n{st}", file=sys.stderr)
            return 1
    results = []
    for q in job.get("queries", []):
        try:
            out = str(s.query(q, "JSONEachRow"))
        except Exception as e:  # noqa: BLE001
            print(f"query failed: {e}\n{q}", file=sys.stderr)
            return 1
        results.append([json.loads(line) for line in out.splitlines() if line.strip()])
    version = str(s.query("SELECT version()", "CSV")).strip().strip('"')
    json.dump({"version": version, "results": results}, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
