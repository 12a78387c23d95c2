#!/usr/bin/env bash
# Regenerates the configuration table in README.md from lib/config/schema.ts.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
table="$("$root/bin/worker" config)"
python3 - "$root/README.md" "$table" <<'PY'
import sys, re
path, table = sys.argv[1], sys.argv[2]
text = open(path).read()
start, end = '<!-- config-table -->', '<!-- /config-table -->'
if end not in text:
    text = text.replace(start, start + '\n' + end)
pre, rest = text.split(start, 1)
_, post = rest.split(end, 1)
open(path, 'w').write(pre + start + '\n' + table + '\n' + end + post)
PY
