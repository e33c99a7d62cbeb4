#!/usr/bin/python3
"""Validates YAML files against a JSON Schema (2020-12): validate-schema.py SCHEMA FILE...

Prints one line per file, "ok FILE" or "invalid FILE: at PATH: MESSAGE" (the deepest, most relevant error), and exits 0
when every file is valid, 1 when one is not, 2 on a usage error or an unreadable schema. Uses Debian 12's
python3-jsonschema (4.10) and python3-yaml. YAML is read as YAML 1.1 (PyYAML): `yes` is a boolean here, while conflux
and YAML 1.2 editors read it as a string; conflux's configs use true/false.
"""
import json
import sys

import jsonschema
import yaml


def where(error):
    path = ""
    for part in error.absolute_path:
        path += "[%d]" % part if isinstance(part, int) else ("." if path else "") + str(part)
    return path or "(top)"


def main(argv):
    if len(argv) < 3:
        print(__doc__.splitlines()[0], file=sys.stderr)
        return 2
    with open(argv[1], encoding="utf-8") as f:
        schema = json.load(f)
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    failed = 0
    for name in argv[2:]:
        try:
            with open(name, encoding="utf-8") as f:
                doc = yaml.safe_load(f)
        except (OSError, yaml.YAMLError) as e:
            print("invalid %s: not YAML: %s" % (name, str(e).replace("\n", " ")))
            failed = 1
            continue
        error = jsonschema.exceptions.best_match(validator.iter_errors(doc))
        if error is None:
            print("ok %s" % name)
        else:
            print("invalid %s: at %s: %s" % (name, where(error), error.message.replace("\n", " ")))
            failed = 1
    return failed


if __name__ == "__main__":
    sys.exit(main(sys.argv))
