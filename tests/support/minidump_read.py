"""Reads minidumps with symbolic, the parser Bugsink uses (its own code's
calls: ProcessState.from_minidump_buffer, FrameInfoMap, CfiCache).

    minidump_read.py DUMP BINARY   prints JSON: the crash, the modules, and
                                   the crashing thread's frames walked with
                                   and without BINARY's CFI, each frame
                                   named from BINARY's symbols
    minidump_read.py --many DUMP.. prints one line per dump: "ok", or the
                                   error symbolic raised
"""

import json
import sys

from symbolic import debuginfo, minidump, symcache


def same_id(breakpad_id, obj):
    return bool(breakpad_id) and debuginfo.id_from_breakpad(breakpad_id).lower() == str(obj.debug_id).lower()


def frames(state, obj, cache):
    thread = state.get_thread(state.requesting_thread)
    out = []
    for i, f in enumerate(thread.frames()):
        module = f.module
        names = []
        if module is not None and same_id(module.debug_id, obj):
            # A caller's frame holds its return address: look up the call.
            addr = f.instruction - module.addr - (0 if i == 0 else 1)
            names = [line.function_name for line in cache.lookup(addr)]
        out.append({"instruction": f.instruction, "trust": f.trust, "functions": names})
    return out


def file_code_id(path):
    try:
        return str(list(debuginfo.Archive.open(path).iter_objects())[0].code_id)
    except Exception:  # noqa: BLE001 - a vdso, a file gone
        return None


def one(path, binary):
    data = open(path, "rb").read()
    obj = list(debuginfo.Archive.open(binary).iter_objects())[0]
    bare = minidump.ProcessState.from_minidump_buffer(data)
    infos = minidump.FrameInfoMap.new()
    for m in bare.modules():
        if same_id(m.debug_id, obj):
            infos.add(m.debug_id, minidump.CfiCache.from_object(obj))
    state = minidump.ProcessState.from_minidump_buffer(data, frame_infos=infos)
    cache = symcache.SymCache.from_object(obj)
    thread = state.get_thread(state.requesting_thread)
    print(json.dumps({
        "crashed": state.crashed,
        "crash_reason": state.crash_reason,
        "crash_address": state.crash_address,
        "requesting_thread": state.requesting_thread,
        "thread_id": thread.thread_id,
        "timestamp": state.timestamp,
        "os": state.system_info.os_name,
        "cpu": state.system_info.cpu_family,
        "binary": {"code_id": str(obj.code_id), "debug_id": str(obj.debug_id)},
        "modules": [
            {"code_file": m.code_file, "code_id": m.code_id, "debug_id": m.debug_id,
             "addr": m.addr, "size": m.size}
            for m in state.modules()
        ],
        # Each module's own file, read by symbolic: its code id.
        "files": {m.code_file: file_code_id(m.code_file) for m in state.modules()},
        "with_cfi": frames(state, obj, cache),
        "without_cfi": frames(bare, obj, cache),
    }))


def many(paths):
    for p in paths:
        try:
            state = minidump.ProcessState.from_minidump_buffer(open(p, "rb").read())
            list(state.modules())
            for t in state.threads():
                list(t.frames())
            print("ok")
        except Exception as e:  # noqa: BLE001 - the test reports what symbolic said
            print("error: %s" % e)


if __name__ == "__main__":
    if sys.argv[1] == "--many":
        many(sys.argv[2:])
    else:
        one(sys.argv[1], sys.argv[2])
