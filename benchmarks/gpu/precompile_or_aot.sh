#!/usr/bin/env bash
# One device call for the second-run target with the generator option precompile: if the device's torch
# can compile a call ahead of time (torch.compile(...).aot_compile, torch.compiler.load_compiled_function and
# keep_portable_guards_unsafe, what texkit_diffusers.precompiled.aot_compile_available checks), the cache
# check with precompile (run_throughput.sh cache_precompile, SHORT=1); otherwise the tiny aot_compile check,
# which says what is missing (run_throughput.sh aot, AOT_TINY_ONLY=1).
#   usage: bash benchmarks/gpu/precompile_or_aot.sh        (carry .whl and .assets, see benchmarks/gpu/README.md)
probe='import sys, torch
f = torch.compile(lambda x: x)
apis = {"aot_compile": getattr(f, "aot_compile", None), "load_compiled_function": getattr(torch.compiler, "load_compiled_function", None),
        "keep_portable_guards_unsafe": getattr(torch.compiler, "keep_portable_guards_unsafe", None)}
print("torch", torch.__version__, " ".join(f"{name}={callable(api)}" for name, api in apis.items()))
sys.exit(0 if all(callable(api) for api in apis.values()) else 1)'
if python3 -c "$probe"; then
  SHORT=1 bash benchmarks/gpu/run_throughput.sh cache_precompile
else
  AOT_TINY_ONLY=1 timeout 500 bash benchmarks/gpu/run_throughput.sh aot
fi
