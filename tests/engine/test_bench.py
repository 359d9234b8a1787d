"""``likeness bench`` leaves out the bf16 figure where the CPU would only emulate bf16."""

from __future__ import annotations

from engine import bench

ZEN4 = (
    "processor\t: 0\nflags\t\t: fpu sse2 avx2 avx512f avx512_bf16 avx512_vnni\n\n"
    "processor\t: 1\nflags\t\t: fpu avx512_bf16\n"
)
ZEN2 = "processor\t: 0\nflags\t\t: fpu sse2 avx2 fma\n"
SAPPHIRE_RAPIDS = "flags\t\t: avx2 amx_bf16 amx_tile\n"


def test_native_bf16_is_read_from_the_cpu_flags() -> None:
    assert bench.cpu_has_native_bf16(ZEN4)
    assert bench.cpu_has_native_bf16(SAPPHIRE_RAPIDS)
    assert not bench.cpu_has_native_bf16(ZEN2)
    assert not bench.cpu_has_native_bf16("")


def test_emulated_bf16_is_not_timed(monkeypatch) -> None:
    monkeypatch.setattr(bench, "cpu_has_native_bf16", lambda cpuinfo=None: False)
    timed = []
    monkeypatch.setattr(bench, "best_seconds", lambda work, repeat=3: timed.append(work) or 0.5)
    peak = bench.peak_gflops("cpu")
    assert set(peak) == {"fp32"} and len(timed) == 1
    assert peak["fp32"] == 2 * 2048**3 / 0.5 / 1e9
