"""Writes SIZE bytes that compress like real binaries (about 2.75x with
gzip -6, 2.5x with gzip -1) to FILE, as a pure function of SEED.

Usage: payload.py SEED SIZE FILE

A 256 KiB block is made first of what executables are made of: bytes with a
skewed distribution (machine code), NUL-separated identifiers from a small
vocabulary (symbol and string tables), zero padding and tables of evenly
spaced 32-bit offsets (relocations). The output is slices of that block at
random offsets, with 10% of the slices replaced by uniform random bytes
(compressed sections, hashes), so gzip finds matches within a slice but
rarely across slices, as in a real binary. Python's random module with a
string seed gives the same bytes on every machine and Python 3 version."""
import random
import sys

LETTERS = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_0123456789./"
BLOCK = 1 << 18


def skewed_table(rng, symbols=48, decay=0.7):
    """A bytes.translate table that maps uniform random bytes onto `symbols`
    values with geometrically falling frequencies."""
    values = rng.sample(range(256), symbols)
    weights = [decay**i for i in range(symbols)]
    scale = 256 / sum(weights)
    table = bytearray()
    for v, w in zip(values, weights):
        table += bytes([v]) * max(1, round(w * scale))
    table = (table + bytes([values[0]]) * 256)[:256]
    rng.shuffle(table)
    return bytes(table)


def block(rng):
    trans = skewed_table(rng)
    vocab = [bytes(rng.choices(LETTERS, k=rng.randint(6, 24))) for _ in range(256)]
    parts, n = [], 0
    while n < BLOCK:
        r = rng.random()
        if r < 0.4:
            s = rng.randbytes(rng.randint(16, 256)).translate(trans)
        elif r < 0.8:
            s = b"\0".join(rng.choices(vocab, k=rng.randint(2, 12))) + b"\0"
        elif r < 0.9:
            s = bytes(rng.randint(4, 64))
        else:
            base, step = rng.randrange(1 << 24), rng.choice((4, 8, 16, 24))
            s = b"".join((base + i * step).to_bytes(4, "little") for i in range(rng.randint(4, 32)))
        parts.append(s)
        n += len(s)
    return b"".join(parts)[:BLOCK]


def generate(seed, size, out):
    rng = random.Random(seed)
    b = block(rng)
    written = 0
    while written < size:
        parts, n = [], 0
        while n < 1 << 16:
            if rng.random() < 0.1:
                s = rng.randbytes(rng.randint(64, 1024))
            else:
                k = rng.randint(256, 4096)
                o = rng.randrange(BLOCK - k)
                s = b[o : o + k]
            parts.append(s)
            n += len(s)
        chunk = b"".join(parts)[: size - written]
        out.write(chunk)
        written += len(chunk)


def main():
    seed, size, path = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    with open(path, "wb") as f:
        generate(seed, size, f)


main()
