#!/usr/bin/env python3
"""Make the PyPI (CUDA) torch wheel importable on a CPU-only machine without
installing the multi-GB nvidia-* / cuda-toolkit wheels.

The Linux x86_64 `torch` wheel on PyPI is a CUDA build: libtorch_cpu.so,
libtorch_cuda.so, libtorch_python.so ... have DT_NEEDED entries for
libcudart.so.13, libcublas.so.13, libcudnn.so.9, libnccl.so.2 and so on.
`pip install torch --no-deps` therefore installs fine but `import torch` fails.

This script scans the libraries that `import torch` loads, finds every needed
shared library that is neither shipped in torch/lib nor present on the system,
and builds a tiny stub library for each one (right SONAME, right symbol
versions, every referenced symbol defined). Every stub function returns 100
(cudaErrorNoDevice / CUDA_ERROR_NO_DEVICE); "error string" functions return a
static message. The stubs go into torch/lib, which is on torch's RPATH
($ORIGIN). CPU ops never call into them; torch.cuda.is_available() is False.

Needs: gcc, readelf (binutils), ldconfig.  Usage: python torch_cpu_stubs.py
(run with the venv's python so `torch` is found via importlib, without
importing it).
"""
import glob
import importlib.util
import os
import re
import subprocess
import sys
import tempfile

MARKER = "FERRITE_CPU_STUBS.txt"


def run(*cmd):
    return subprocess.run(cmd, check=True, capture_output=True, text=True).stdout


def needed(path):
    return re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", run("readelf", "-d", "-W", path))


def verneed(path):
    """version name -> file that must define it"""
    out = run("readelf", "-V", "-W", path)
    m, cur = {}, None
    for line in out.splitlines():
        f = re.search(r"File: (\S+)", line)
        if f:
            cur = f.group(1)
            continue
        n = re.search(r"Name: (\S+)", line)
        if n and cur is not None and "Version needs" not in line:
            m[n.group(1)] = cur
    return m


def dynsyms(path):
    """yield (type, bind, ndx, name, version or None)"""
    out = run("readelf", "--dyn-syms", "-W", path)
    for line in out.splitlines():
        parts = line.split()
        if len(parts) < 8 or not parts[0].rstrip(":").isdigit():
            continue
        typ, bind, ndx, name = parts[3], parts[4], parts[6], parts[7]
        ver = None
        if "@" in name:
            name, ver = re.split(r"@@?", name, maxsplit=1)
        yield typ, bind, ndx, name, ver


def system_libs():
    libs = {}
    for line in run("ldconfig", "-p").splitlines():
        m = re.match(r"\s+(\S+) \(([^)]*)\) => (\S+)", line)
        if m and "x86-64" in m.group(2):
            libs.setdefault(m.group(1), m.group(3))
    return libs


def main():
    spec = importlib.util.find_spec("torch")
    if spec is None or not spec.submodule_search_locations:
        sys.exit("torch is not installed in this interpreter")
    tdir = list(spec.submodule_search_locations)[0]
    libdir = os.path.join(tdir, "lib")
    own = {os.path.basename(p): p for p in glob.glob(os.path.join(libdir, "*.so*"))}
    # drop stubs from an earlier run so they count as missing again
    marker = os.path.join(libdir, MARKER)
    if os.path.exists(marker):
        for name in open(marker).read().split():
            own.pop(name, None)
    sysl = system_libs()

    roots = glob.glob(os.path.join(tdir, "_C*.so")) + [os.path.join(libdir, "libtorch_global_deps.so")]
    resolved, missing, refs = {}, set(), []  # refs: (referencing path)
    todo = list(roots)
    seen = set()
    while todo:
        p = todo.pop()
        if p in seen:
            continue
        seen.add(p)
        refs.append(p)
        for n in needed(p):
            if n in own:
                resolved[n] = own[n]
                todo.append(own[n])
            elif n in sysl:
                resolved[n] = sysl[n]
                todo.append(sysl[n])
            else:
                missing.add(n)
    if not missing:
        print("torch_cpu_stubs: nothing missing, no stubs needed")
        return

    defined = set()
    for p in seen:
        for typ, bind, ndx, name, ver in dynsyms(p):
            if ndx != "UND":
                defined.add(name)

    # symbols the interpreter itself provides (Py*, _Py*): from the executable
    # or from libpython when Python is built shared
    import sysconfig
    exe = [os.path.realpath(sys.executable)]
    if sysconfig.get_config_var("Py_ENABLE_SHARED"):
        ld = os.path.join(sysconfig.get_config_var("LIBDIR") or "", sysconfig.get_config_var("LDLIBRARY") or "")
        if os.path.exists(ld):
            exe.append(ld)
    for p in exe:
        for typ, bind, ndx, name, ver in dynsyms(p):
            if ndx != "UND":
                defined.add(name)
    python_api = re.compile(r"^_?Py|^_Py")

    versioned = {m: {} for m in missing}   # lib -> {version: {name: typ}}
    unversioned = {}                       # name -> typ
    for p in refs:
        vn = verneed(p)
        for typ, bind, ndx, name, ver in dynsyms(p):
            if ndx != "UND" or bind == "WEAK" or not name:
                continue
            if ver is not None and vn.get(ver) in missing:
                versioned[vn[ver]].setdefault(ver, {})[name] = typ
            elif ver is None and name not in defined and not python_api.match(name):
                unversioned[name] = typ

    errstr = re.compile(r"(?i)(errorstring|errorname|geterrorstr|getstring)")
    made = []
    with tempfile.TemporaryDirectory() as tmp:
        for lib in sorted(missing):
            syms = {}
            for v in versioned[lib].values():
                syms.update(v)
            has_versions = bool(versioned[lib])
            # unversioned unresolved references: define them in every
            # unversioned stub so whichever scope is searched finds them
            if not has_versions:
                syms.update(unversioned)
            c = [
                'static const char ferrite_stub_msg[] = "CUDA is not available (ferrite CPU-only torch stub)";',
                "long ferrite_stub_ret(void) { return 100; }",
                "const char *ferrite_stub_str(void) { return ferrite_stub_msg; }",
            ]
            for i, (name, typ) in enumerate(sorted(syms.items())):
                if typ == "OBJECT":
                    c.append(f'char ferrite_obj_{i}[4096] __asm__("{name}");')
                else:
                    target = "ferrite_stub_str" if errstr.search(name) else "ferrite_stub_ret"
                    c.append(f'void ferrite_fn_{i}(void) __asm__("{name}") __attribute__((alias("{target}")));')
            src = os.path.join(tmp, lib + ".c")
            with open(src, "w") as f:
                f.write("\n".join(c) + "\n")
            vs = os.path.join(tmp, lib + ".map")
            with open(vs, "w") as f:
                if has_versions:
                    for ver, vsyms in sorted(versioned[lib].items()):
                        body = " ".join(f'"{s}";' for s in sorted(vsyms))
                        f.write(f'{ver} {{ global: {body} }};\n')
                    f.write("FERRITE_LOCAL { local: *; };\n")
                else:
                    body = " ".join(f'"{s}";' for s in sorted(syms))
                    f.write(f"{{ global: {body} local: *; }};\n")
            out = os.path.join(libdir, lib)
            subprocess.run(["gcc", "-shared", "-fPIC", "-O1", "-Wno-attribute-alias", "-o", out, src,
                            f"-Wl,-soname,{lib}", f"-Wl,--version-script={vs}"], check=True)
            made.append(lib)
            print(f"torch_cpu_stubs: {lib}: {len(syms)} symbols")
    with open(marker, "w") as f:
        f.write("\n".join(made) + "\n")


if __name__ == "__main__":
    main()
