"""Times the Python mlx side of the mlx package benchmarks. Prints JSON.

usage: bench_reference.py op N            seconds per mx.add of two small arrays (graph only)
       bench_reference.py mlp IN HIDDEN OUT BATCH N   seconds per SGD step of a 2-layer MLP
"""

import json
import sys
import time

import mlx.core as mx


def bench_op(n):
    a, b = mx.ones((4,)), mx.ones((4,))
    mx.eval(a, b)
    t = time.perf_counter()
    for _ in range(n):
        c = mx.add(a, b)
        del c
    return (time.perf_counter() - t) / n


def bench_mlp(d_in, hidden, d_out, batch, n):
    k1, k2 = mx.random.split(mx.random.key(1))
    params = [mx.random.normal((d_in, hidden), key=k1) * 0.1, mx.zeros((hidden,)),
              mx.random.normal((hidden, d_out), key=k2) * 0.1, mx.zeros((d_out,))]
    x = mx.random.normal((batch, d_in), key=mx.random.key(2))
    y = mx.random.normal((batch, d_out), key=mx.random.key(3))

    def loss_fn(w1, b1, w2, b2):
        h = mx.tanh(x @ w1 + b1)
        return mx.mean(mx.square(h @ w2 + b2 - y))

    vg = mx.value_and_grad(loss_fn, argnums=(0, 1, 2, 3))

    def step(params):
        loss, grads = vg(*params)
        params = [p - g * 0.05 for p, g in zip(params, grads)]
        mx.eval(params, loss)
        return params

    for _ in range(20):
        params = step(params)
    t = time.perf_counter()
    for _ in range(n):
        params = step(params)
    return (time.perf_counter() - t) / n


if __name__ == "__main__":
    kind = sys.argv[1]
    if kind == "op":
        secs = bench_op(int(sys.argv[2]))
    else:
        secs = bench_mlp(*map(int, sys.argv[2:7]))
    print(json.dumps({"seconds": secs}))
