#!/usr/bin/env python3
"""Writes the seed corpus for tests/schema/fuzz_registry.c.

usage: make_corpus.py DEMO_PB REGISTRY_PB FIXTURE_DIR OUT_DIR

Seeds: whole sets (demo, registry, error fixtures), each self-contained file
of the registry set alone (these load, so mutations of them reach the
resolver and the indexes), truncations, and deterministic mutations (byte
flips, length bumps, deleted and duplicated spans). The output is committed
under tests/fuzz/schema; rerun after changing the test protos.
"""
import os
import random
import sys


def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def read_varint(data, pos):
    shift = value = 0
    while True:
        b = data[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        if not b & 0x80:
            return value, pos
        shift += 7


def files_of(data):
    """The FileDescriptorProto byte strings of a FileDescriptorSet."""
    pos, out = 0, []
    while pos < len(data):
        key, pos = read_varint(data, pos)
        assert key == 0x0A, 'unexpected field in a descriptor set'
        n, pos = read_varint(data, pos)
        out.append(data[pos:pos + n])
        pos += n
    return out


def name_of(fdp):
    key, pos = read_varint(fdp, 0)
    assert key == 0x0A
    n, pos = read_varint(fdp, pos)
    return fdp[pos:pos + n].decode()


def as_set(*files):
    return b''.join(b'\x0a' + varint(len(f)) + f for f in files)


def main(argv):
    demo_pb, registry_pb, fixture_dir, out = argv[1:5]
    os.makedirs(out, exist_ok=True)
    # found-*: inputs libFuzzer discovered (merged with -merge=1, kept when
    # small); they are not generated here, so they stay.
    for old in os.listdir(out):
        if not old.startswith('found-'):
            os.remove(os.path.join(out, old))
    seeds = {}
    demo = open(demo_pb, 'rb').read()
    registry = open(registry_pb, 'rb').read()
    seeds['set-demo'] = demo
    seeds['set-registry'] = registry
    for f in sorted(os.listdir(fixture_dir)):
        if f.endswith('.pb') and f not in ('demo.pb', 'registry.pb'):
            seeds['fixture-' + f[:-3]] = open(os.path.join(fixture_dir, f), 'rb').read()

    by_name = {name_of(f): f for f in files_of(registry)}
    small = {
        'file-proto2': by_name['test/registry_proto2.proto'],
        'file-proto3': by_name['test/registry_proto3.proto'],
        'file-nopkg': by_name['test/registry_nopkg.proto'],
        'file-empty-proto': by_name['google/protobuf/empty.proto'],
    }
    for k, v in small.items():
        seeds[k] = as_set(v)
    seeds['file-proto3-twice'] = as_set(small['file-proto3'], small['file-proto3'])
    seeds['file-all-small'] = as_set(*small.values())
    # The service file with its imports: HTTP rules in a small set.
    svc_deps = ['google/protobuf/descriptor.proto', 'google/api/http.proto',
                'google/api/annotations.proto', 'google/protobuf/empty.proto',
                'test/registry_proto3.proto', 'test/registry_service.proto']
    seeds['set-service'] = as_set(*(by_name[n] for n in svc_deps))
    # Missing dependency: the service file alone.
    seeds['file-service-alone'] = as_set(by_name['test/registry_service.proto'])

    rng = random.Random(20261121)
    base = seeds['file-proto3']
    for i, cut in enumerate([1, 2, 5, len(base) // 3, len(base) // 2, len(base) - 1]):
        seeds['trunc-proto3-%d' % i] = base[:cut]
    for i, cut in enumerate([3, 100, len(demo) // 2, len(demo) - 1]):
        seeds['trunc-demo-%d' % i] = demo[:cut]
    for name in ('file-proto3', 'file-proto2', 'file-nopkg', 'set-service'):
        src = seeds[name]
        for i in range(6):
            b = bytearray(src)
            kind = i % 3
            pos = rng.randrange(len(b))
            if kind == 0:
                b[pos] ^= 1 << rng.randrange(8)
            elif kind == 1:
                b[pos] = (b[pos] + 1) & 0xFF
            else:
                n = rng.randrange(1, 8)
                b[pos:pos] = b[pos:pos + n]
            seeds['mut-%s-%d' % (name, i)] = bytes(b)
    seeds['bytes-empty'] = b''
    seeds['bytes-text'] = b'syntax = "proto3";\n'
    seeds['bytes-huge-length'] = b'\x0a\xff\xff\xff\xff\x0f'
    seeds['bytes-varint-overflow'] = b'\x0a' + b'\xff' * 11
    seeds['bytes-group'] = b'\x0b\x0c'
    for name, data in sorted(seeds.items()):
        with open(os.path.join(out, name), 'wb') as f:
            f.write(data)
    print('%d seeds in %s' % (len(seeds), out))


if __name__ == '__main__':
    main(sys.argv)
