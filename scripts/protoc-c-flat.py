#!/usr/bin/env python3
"""Run protoc-c and flatten its output into one directory.

Meson's custom_target cannot declare outputs in subdirectories, and protoc-c
writes google/protobuf/x.pb-c.c for google/protobuf/x.proto. This script runs
protoc-c into a scratch directory, then writes each file to OUTDIR under its
path with '/' replaced by '_' and rewrites the generated #include lines the
same way.

protoc-c 1.4 refuses proto3 `optional` fields. Their wire form is that of a
plain field, so with --strip-optional ROOT the proto3 files under ROOT are
copied with the `optional` label removed before protoc-c sees them; the
generated C code then lacks presence for those fields (the demo service does
not need it; the gateway itself never uses protobuf-c for user messages).

usage: protoc-c-flat.py PROTOC_C OUTDIR [--strip-optional ROOT] [-Idir ...] -- file.proto ...
"""
import os
import re
import subprocess
import sys
import tempfile


def flat(path):
    return path.replace('/', '_')


def main(argv):
    protoc_c, outdir = argv[1], argv[2]
    sep = argv.index('--')
    includes, protos = argv[3:sep], argv[sep + 1:]
    with tempfile.TemporaryDirectory() as tmp, tempfile.TemporaryDirectory() as stripped:
        if includes and includes[0] == '--strip-optional':
            root = includes[1]
            includes = ['-I' + stripped] + includes[2:]
            opt_re = re.compile(r'^(\s*)optional\s+', re.M)
            for dirpath, _, names in os.walk(root):
                for name in names:
                    if not name.endswith('.proto'):
                        continue
                    src = os.path.join(dirpath, name)
                    dst = os.path.join(stripped, os.path.relpath(src, root))
                    os.makedirs(os.path.dirname(dst), exist_ok=True)
                    with open(src, encoding='utf-8') as f:
                        text = f.read()
                    if re.search(r'syntax\s*=\s*"proto3"', text):
                        text = opt_re.sub(r'\1', text)
                    with open(dst, 'w', encoding='utf-8') as f:
                        f.write(text)
        subprocess.run([protoc_c, '--c_out=' + tmp] + includes + protos, check=True)
        inc_re = re.compile(r'#include "([^"]+\.pb-c\.h)"')
        for root, _, names in os.walk(tmp):
            for name in names:
                src = os.path.join(root, name)
                rel = os.path.relpath(src, tmp)
                with open(src, encoding='utf-8') as f:
                    text = f.read()
                text = inc_re.sub(lambda m: '#include "%s"' % flat(m.group(1)), text)
                with open(os.path.join(outdir, flat(rel)), 'w', encoding='utf-8') as f:
                    f.write(text)
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv))
