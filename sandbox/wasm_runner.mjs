// The wasm sandbox's interpreter: Pyodide (CPython compiled to WebAssembly) under Deno, one per question.
//
// Started by sandbox/wasm_backend.py with no permission but reading the Pyodide runtime, the wheel dir and
// this question's staged attachments. It talks JSON lines: the first line on stdin is the set-up, each
// later line a program to run. Every line it writes starts with the host's random token, so a program
// writing to stdout directly (console.log, Deno.stdout) cannot forge "the run ended"; such output is
// shown to the agent as the program's own. Host-side the process is killed (not asked) at a time limit,
// a cancel or the memory limit: a busy wasm loop cannot be interrupted from inside.

const realSetTimeout = globalThis.setTimeout;
const realClearTimeout = globalThis.clearTimeout;
const realSetInterval = globalThis.setInterval;
const realClearInterval = globalThis.clearInterval;
const encoder = new TextEncoder();
const stdout = Deno.stdout;
const stdin = Deno.stdin;
const CHUNK = 32 * 1024; // characters per "out" message: the host reads lines of bounded size

let token = "";
function send(message) {
  const line = encoder.encode(token + " " + JSON.stringify(message) + "\n");
  let written = 0;
  while (written < line.length) written += stdout.writeSync(line.subarray(written));
}

// --- the memory limit: Python's heap is the wasm memory; growing it past the limit fails like malloc ---
let memoryLimit = Infinity;
const grow = WebAssembly.Memory.prototype.grow;
WebAssembly.Memory.prototype.grow = function (pages) {
  if (this.buffer.byteLength + pages * 65536 > memoryLimit) throw new RangeError("sandbox memory limit");
  return grow.call(this, pages);
};

// --- timers: whatever a program scheduled (asyncio tasks, js.setTimeout) dies with its run ---
let generation = 0;
const timers = new Set();
function track(real, clear, kind) {
  return function (callback, delay, ...args) {
    const born = generation;
    let id;
    const fire = () => {
      if (kind === "timeout") timers.delete(id);
      if (born !== generation) return; // scheduled by an earlier run
      if (typeof callback === "function") callback(...args);
    };
    id = real(fire, delay);
    timers.add(id);
    return id;
  };
}
globalThis.setTimeout = track(realSetTimeout, realClearTimeout, "timeout");
globalThis.setInterval = track(realSetInterval, realClearInterval, "interval");
globalThis.clearTimeout = (id) => { timers.delete(id); realClearTimeout(id); };
globalThis.clearInterval = (id) => { timers.delete(id); realClearInterval(id); };
function killTimers() {
  generation += 1;
  for (const id of timers) { realClearTimeout(id); realClearInterval(id); }
  timers.clear();
}

// --- stdin, line by line ---
const decoder = new TextDecoder();
let pending = "";
const reader = stdin.readable.getReader();
async function readLine() {
  for (;;) {
    const nl = pending.indexOf("\n");
    if (nl >= 0) {
      const line = pending.slice(0, nl);
      pending = pending.slice(nl + 1);
      return line;
    }
    const { value, done } = await reader.read();
    if (done) return null;
    pending += decoder.decode(value, { stream: true });
  }
}

// --- output of the program, streamed as it is written ---
// Past `outputBytes` only a rolling tail is kept and the rest counted, so a program printing 100 MB
// costs neither the host nor this process much; the tail goes out when the run ends.
let outputBytes = 64000;
const output = { sent: 0, held: 0, tail: new Uint8Array(0), decoder: new TextDecoder() };
function resetOutput() {
  output.sent = 0; output.held = 0; output.tail = new Uint8Array(0); output.decoder = new TextDecoder();
}
function emit(text) {
  for (let i = 0; i < text.length; i += CHUNK) send({ out: text.slice(i, i + CHUNK) });
}
const programOutput = {
  write(buffer) {
    let rest = buffer;
    if (output.sent < outputBytes) {
      const head = buffer.subarray(0, outputBytes - output.sent);
      output.sent += head.length;
      emit(output.decoder.decode(head, { stream: true }));
      rest = buffer.subarray(head.length);
    }
    if (rest.length) {
      const keep = Math.max(1, Math.floor(outputBytes / 4));
      output.held += rest.length;
      const joined = new Uint8Array(Math.min(keep, output.tail.length + rest.length));
      const fromRest = Math.min(rest.length, joined.length);
      joined.set(output.tail.subarray(output.tail.length - (joined.length - fromRest)), 0);
      joined.set(rest.subarray(rest.length - fromRest), joined.length - fromRest);
      output.tail = joined;
    }
    return buffer.length;
  },
};
function flushOutput() {
  emit(output.decoder.decode());
  if (output.held) send({ tail: new TextDecoder().decode(output.tail), held: output.held });
  resetOutput();
}

// --- the file system: attachments read-only in /work, writes only under /work and /tmp ---
// Emscripten's errno numbers (its ERRNO_CODES table is not exported).
const ERR = { EPERM: 63, EACCES: 2, EROFS: 69 };
let hostMode = false; // the runner itself writes /code/main.py
function protect(FS, attachmentPaths, writable) {
  const under = (path) => hostMode || writable.some((root) => path === root || path.startsWith(root + "/"));
  const nodePath = (node) => FS.getPath(node);
  const attached = new Set(attachmentPaths);
  const WRITE = 0o1 | 0o2 | 0o100 | 0o1000 | 0o2000; // O_WRONLY O_RDWR O_CREAT O_TRUNC O_APPEND
  const mayOpen = FS.mayOpen;
  FS.mayOpen = function (node, flags) {
    if (node && (flags & WRITE)) {
      const path = nodePath(node);
      if (attached.has(path)) return ERR.EACCES;
      if (!under(path) && !FS.isChrdev(node.mode)) return ERR.EROFS;
    }
    return mayOpen.call(this, node, flags);
  };
  const mayCreate = FS.mayCreate;
  FS.mayCreate = function (dir, name) {
    if (!under(nodePath(dir))) return ERR.EROFS;
    return mayCreate.call(this, dir, name);
  };
  const mayDelete = FS.mayDelete;
  FS.mayDelete = function (dir, name, isdir) {
    const path = nodePath(dir).replace(/\/$/, "") + "/" + name;
    if (attached.has(path)) return ERR.EPERM;
    if (!under(nodePath(dir)) || writable.includes(path)) return ERR.EROFS;
    return mayDelete.call(this, dir, name, isdir);
  };
  for (const name of ["chmod", "fchmod", "lchmod", "chown", "fchown", "lchown", "truncate", "ftruncate", "utime"]) {
    const original = FS[name];
    if (typeof original !== "function") continue;
    FS[name] = function (target, ...rest) {
      let node = null;
      try {
        if (typeof target === "string") node = FS.lookupPath(target, { follow: !name.startsWith("l") }).node;
        else if (typeof target === "number") node = (FS.getStreamChecked ?? FS.getStream)(target)?.node;
        else node = target;
      } catch { /* the original reports a missing file */ }
      if (node) {
        const path = nodePath(node);
        if (attached.has(path)) throw new FS.ErrnoError(ERR.EPERM);
        if (!under(path)) throw new FS.ErrnoError(ERR.EROFS);
      }
      return original.call(this, target, ...rest);
    };
  }
}

const SETUP_PY = `
import ast, builtins, importlib, inspect, os, sys, traceback, types
os.environ.update(HOME="/work", TMPDIR="/tmp", LANG="C.UTF-8", PYTHONDONTWRITEBYTECODE="1", MPLBACKEND="Agg")
sys.path[:] = ["/work"] + [p for p in sys.path if p not in ("", ".", "/home/pyodide")]
sys.argv = ["/code/main.py"]
_rt_streams = (sys.stdout, sys.stderr)

def _rt_exit_code(exc):
    code = exc.code
    if code is None:
        return 0
    if isinstance(code, int):
        return code & 0xFF
    print(code, file=sys.stderr)
    return 1

async def _rt_run(source):
    sys.stdout, sys.stderr = _rt_streams
    os.chdir("/work")
    importlib.invalidate_caches()
    main = types.ModuleType("__main__")
    main.__file__ = "/code/main.py"
    main.__builtins__ = builtins
    sys.modules["__main__"] = main
    try:
        try:
            code = compile(source, "/code/main.py", "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
            result = eval(code, main.__dict__)
            if inspect.iscoroutine(result):
                await result
            return 0
        except SystemExit as exc:
            return _rt_exit_code(exc)
        except BaseException as exc:
            frames = traceback.extract_tb(exc.__traceback__)
            skip = 1 if frames and frames[0].name == "_rt_run" else 0
            print("Traceback (most recent call last):", file=sys.stderr)
            print("".join(traceback.format_list(frames[skip:])), end="", file=sys.stderr)
            print("".join(traceback.format_exception_only(exc)), end="", file=sys.stderr)
            return 1
    finally:
        for stream in (sys.stdout, sys.stderr, *_rt_streams):
            try:
                stream.flush()
            except Exception:
                pass
        sys.stdout, sys.stderr = _rt_streams
`;

async function main() {
  const first = await readLine();
  if (first === null) return;
  const setup = JSON.parse(first);
  token = setup.token;
  memoryLimit = setup.memory_mb * 1024 * 1024;
  outputBytes = setup.output_bytes;
  const started = performance.now();
  const { loadPyodide } = await import(setup.pyodide_module);
  if (setup.make_snapshot) {
    // install-wasm: a memory image of a freshly started interpreter, which later starts in a tenth of the time
    const fresh = await loadPyodide({ indexURL: setup.index_url, _makeSnapshot: true });
    await Deno.writeFile(setup.make_snapshot, fresh.makeMemorySnapshot());
    send({ snapshot: setup.make_snapshot, load_s: (performance.now() - started) / 1000 });
    return;
  }
  let pyodide = null;
  if (setup.snapshot) {
    try {
      pyodide = await loadPyodide({ indexURL: setup.index_url, _loadSnapshot: await Deno.readFile(setup.snapshot) });
    } catch (error) {
      send({ warning: "the interpreter snapshot did not load: " + String(error?.message ?? error).slice(0, 300) });
    }
  }
  pyodide ??= await loadPyodide({ indexURL: setup.index_url });
  pyodide.setStdout(programOutput);
  pyodide.setStderr(programOutput);
  pyodide.setStdin({ stdin: () => null }); // EOF: fd 0 is the host's request stream, never the program's
  for (const wheel of setup.wheels) await pyodide.loadPackage(wheel, { messageCallback: () => {} });
  const FS = pyodide.FS;
  for (const dir of ["/work", "/tmp", "/code"]) FS.mkdirTree(dir);
  const attachments = [];
  for (const [hostPath, name] of setup.files) {
    const path = "/work/" + name;
    FS.writeFile(path, await Deno.readFile(hostPath));
    FS.chmod(path, 0o444);
    attachments.push(path);
  }
  FS.writeFile("/code/main.py", "");
  pyodide.runPython(SETUP_PY);
  const run = pyodide.globals.get("_rt_run");
  const available = new Set(setup.lock_packages);
  const importsToPackages = new Map();
  for (const [name, info] of Object.entries(pyodide._api.lockfile_packages ?? {})) {
    for (const imp of info.imports ?? []) if (available.has(name)) importsToPackages.set(imp, name);
  }
  const findImports = pyodide.pyodide_py.code.find_imports;
  protect(FS, attachments, ["/work", "/tmp"]);
  send({ ready: true, load_s: (performance.now() - started) / 1000 });

  for (;;) {
    const line = await readLine();
    if (line === null) return;
    const request = JSON.parse(line);
    resetOutput();
    let exit = 0;
    try {
      if (importsToPackages.size) {
        let names = [];
        try { names = findImports(request.code).toJs(); } catch { /* a syntax error: Python reports it */ }
        const wanted = [...new Set(names.map((n) => importsToPackages.get(n)).filter(Boolean))];
        if (wanted.length) {
          hostMode = true; // installing into site-packages, before the program runs
          try {
            await pyodide.loadPackage(wanted, { messageCallback: () => {}, errorCallback: (m) => programOutput.write(encoder.encode(m + "\n")) });
          } finally { hostMode = false; }
        }
      }
      hostMode = true;
      try { FS.writeFile("/code/main.py", request.code); } finally { hostMode = false; }
      exit = await run(request.code);
    } catch (error) {
      programOutput.write(encoder.encode("sandbox: " + String(error?.message ?? error).slice(-2000) + "\n"));
      exit = 1;
    }
    killTimers();
    flushOutput();
    send({ done: true, exit });
  }
}

main().then(
  () => Deno.exit(0),
  (error) => {
    try { send({ fatal: String(error?.stack ?? error).slice(-4000) }); } catch { /* stdout is gone */ }
    Deno.exit(70);
  },
);
