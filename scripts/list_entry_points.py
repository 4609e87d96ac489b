#!/usr/bin/env python3
"""List the public entry points of regula, and check that the entry-point sweep has a row for each.

    scripts/list_entry_points.py [--root DIR]                  # print the list
    scripts/list_entry_points.py --check BIN [BIN...]          # compare with the sweep's rows

An entry point is written `qualified::name/N`: the scope (namespaces, then classes), the function
name and N, the number of parameters it declares (default arguments included), so that every
overload of a name is its own entry point. Examples: `regula::softmax/2`,
`regula::Dropout::forward/4`, `regula::libtorch::kd_kl/3`.

What counts as public (the pattern, applied to every header under include/regula/):
- every function declared at namespace scope, and every member function (constructors, static
  members, operators and hidden friends defined in the class) in a public section of a class or
  struct at namespace scope or nested in another public class;
- except anything inside a namespace or class named `detail`, `kernels` or `simd` (the kernel
  layer and its SIMD plumbing take raw pointers and are checked by their callers), functions whose
  name begins with `detail_` (implementation functions that must live outside `detail` to be
  befriended), destructors, and special members declared `= default` or `= delete`.

How the headers are read, without a compiler: comments, string and character literals and
preprocessor lines are removed; function-like macros defined in regula's own headers are expanded
where they are invoked at namespace or class scope (that is how `REGULA_DETAIL_TEACHER_LOSS_API`
and `REGULA_TORCH_TEACHER_LOSS` declare their functions); then the declarations of each scope are
read token by token, function bodies skipped by brace matching. A function-like macro from another
library invoked at namespace scope (`TORCH_MODULE(Dropout);`) looks like a function without a
return type and is skipped.

With --check, every BIN is run with the Catch2 test `sweep: list rows`, which prints one line
`ROW <entry point>` per registered row. Entry points of include/regula/integrations/torch.hpp and
integrations/mpi.hpp are only required when a BIN prints `SWEEP-COVERS torch` (or `mpi`), so a
build without libtorch or MPI checks the rest. The check fails, listing them, on entry points
without a row and on rows that name no entry point.
"""

import argparse
import os
import re
import subprocess
import sys

EXCLUDED_SCOPES = {"detail", "kernels", "simd"}
INTEGRATIONS = {"regula/integrations/torch.hpp": "torch", "regula/integrations/mpi.hpp": "mpi"}


def strip_source(text):
    """Removes comments, literals and preprocessor lines; returns (code, macros)."""
    out = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i)
            i = n if j < 0 else j
        elif text.startswith("/*", i):
            j = text.find("*/", i + 2)
            out.append(" ")
            i = n if j < 0 else j + 2
        elif c == '"' or c == "'":
            j = i + 1
            while j < n and text[j] != c:
                j += 2 if text[j] == "\\" else 1
            out.append('""' if c == '"' else "0")
            i = j + 1
        elif text.startswith('R"', i) and (i == 0 or not (text[i - 1].isalnum() or text[i - 1] == "_")):
            m = re.match(r'R"([^(]*)\(', text[i:])
            end = text.find(")" + m.group(1) + '"', i)
            out.append('""')
            i = end + len(m.group(1)) + 2
        else:
            out.append(c)
            i += 1
    code = "".join(out).replace("\\\n", " ")
    macros = {}
    lines = []
    for line in code.split("\n"):
        s = line.strip()
        if s.startswith("#"):
            m = re.match(r"#\s*define\s+(\w+)\(([^)]*)\)(.*)", s)
            if m:
                params = [p.strip() for p in m.group(2).split(",") if p.strip()]
                macros[m.group(1)] = (params, m.group(3))
            lines.append("")
        else:
            lines.append(line)
    return "\n".join(lines), macros


TOKEN = re.compile(r"[A-Za-z_]\w*|\d[\w.]*|::|->|##|\S")


def split_args(tokens):
    """Splits a token list at top-level commas (parentheses, brackets, braces, angles)."""
    parts, cur, depth = [], [], 0
    for t in tokens:
        if t in "([{<":
            depth += 1
        elif t in ")]}>":
            depth -= 1
        if t == "," and depth == 0:
            parts.append(cur)
            cur = []
        else:
            cur.append(t)
    if cur or parts:
        parts.append(cur)
    return parts


def expand(tokens, macros, depth=0):
    """Expands regula's function-like macros in a token list (## pastes, # stringizes)."""
    if depth > 8:
        return tokens
    out, i = [], 0
    while i < len(tokens):
        t = tokens[i]
        if t in macros and i + 1 < len(tokens) and tokens[i + 1] == "(":
            j, level = i + 1, 0
            while True:
                if tokens[j] == "(":
                    level += 1
                elif tokens[j] == ")":
                    level -= 1
                    if level == 0:
                        break
                j += 1
            params, body = macros[t]
            args = [a for a in split_args_parens(tokens[i + 2:j])]
            binding = dict(zip(params, args))
            body_tokens = TOKEN.findall(body)
            result = []
            k = 0
            while k < len(body_tokens):
                b = body_tokens[k]
                if b == "#" and k + 1 < len(body_tokens) and body_tokens[k + 1] in binding:
                    result.append('""')
                    k += 2
                    continue
                if b == "##" and result and k + 1 < len(body_tokens):
                    nxt = body_tokens[k + 1]
                    nxt_tokens = binding.get(nxt, [nxt])
                    result[-1] = result[-1] + "".join(nxt_tokens)
                    k += 2
                    continue
                result.extend(binding.get(b, [b]))
                k += 1
            out.extend(expand(result, macros, depth + 1))
            i = j + 1
        else:
            out.append(t)
            i += 1
    return out


def split_args_parens(tokens):
    """Macro arguments split at commas outside parentheses only (angles do not group there)."""
    parts, cur, level = [], [], 0
    for t in tokens:
        if t in "([{":
            level += 1
        elif t in ")]}":
            level -= 1
        if t == "," and level == 0:
            parts.append(cur)
            cur = []
        else:
            cur.append(t)
    parts.append(cur)
    return parts


class Parser:
    def __init__(self, tokens, header, found, calls=None, objects=None, aliases=None):
        self.t = tokens
        self.i = 0
        self.header = header
        self.found = found
        # Function objects: the call operators' parameter counts of each class (by its name,
        # whatever its scope), the alias templates naming a class, and the namespace-scope
        # `constexpr` objects of a class type, whose calls are entry points under the object's
        # name (`inline constexpr detail::TeacherLoss<detail::KdKl> kd_kl{};` gives
        # `regula::kd_kl/3` and `/4`).
        self.calls = {} if calls is None else calls
        self.objects = [] if objects is None else objects
        self.aliases = {} if aliases is None else aliases

    def skip_group(self, open_tok, close_tok):
        """At an opening token: skips to just past its matching closing token."""
        level = 0
        while self.i < len(self.t):
            tok = self.t[self.i]
            if tok == open_tok:
                level += 1
            elif tok == close_tok:
                level -= 1
                if level == 0:
                    self.i += 1
                    return
            self.i += 1

    def scope(self, names, kind, public):
        """Reads declarations until the closing brace of this scope (or the end)."""
        while self.i < len(self.t):
            tok = self.t[self.i]
            if tok == "}":
                self.i += 1
                return
            if tok == ";":
                self.i += 1
                continue
            if kind == "class" and tok in ("public", "private", "protected") and \
                    self.i + 1 < len(self.t) and self.t[self.i + 1] == ":":
                public = tok == "public"
                self.i += 2
                continue
            if tok == "namespace":
                j = self.i + 1
                parts = []
                while self.t[j] != "{" and self.t[j] != "=":
                    if self.t[j] not in ("::", "inline"):
                        parts.append(self.t[j])
                    j += 1
                if self.t[j] == "=":  # namespace alias
                    self.i = j
                    self.statement_end()
                    continue
                self.i = j + 1
                self.scope(names + parts, "namespace", public)
                continue
            self.declaration(names, kind, public)

    def statement_end(self):
        while self.i < len(self.t) and self.t[self.i] != ";":
            if self.t[self.i] == "{":
                self.skip_group("{", "}")
                continue
            if self.t[self.i] == "}":
                return
            self.i += 1
        self.i += 1

    def declaration(self, names, kind, public):
        start = self.i
        head = []  # tokens of the declaration before a body, template headers removed
        paren = 0
        while self.i < len(self.t):
            tok = self.t[self.i]
            if paren == 0 and tok == "template" and self.i + 1 < len(self.t) and self.t[self.i + 1] == "<":
                self.i += 1
                self.skip_angles()
                continue
            if tok in "([":
                paren += 1
            elif tok in ")]":
                paren -= 1
            elif paren == 0 and tok in (";", "{", "}"):
                break
            head.append(tok)
            self.i += 1
        if self.i >= len(self.t):
            return
        end = self.t[self.i]
        if end == "}":
            return  # closing brace of the enclosing scope; scope() consumes it
        words = [w for w in head if re.match(r"[A-Za-z_]", w)]
        if not head:
            self.i += 1 if end == ";" else 0
            if end == "{":
                self.skip_group("{", "}")
            return
        first = head[0]
        if first == "using" and "=" in head:
            target = self.template_name(head[head.index("=") + 1:])
            if target is not None and len(head) > 1:
                self.aliases[head[1]] = target
        if first in ("using", "typedef", "static_assert") or "enum" in words[:2]:
            self.statement_end()
            return
        fn = self.function_name(head, names, kind)
        if fn is None and kind == "namespace" and "constexpr" in head and public and \
                re.match(r"[A-Za-z_]\w*$", head[-1]) and "(" not in head:
            typ = self.template_name(head[head.index("constexpr") + 1:-1])
            if typ is not None:
                self.objects.append((names, head[-1], typ, self.header))
        if fn is None:
            cls = self.class_name(head)
            if cls is not None and end == "{":
                self.i += 1
                is_public = public and cls not in EXCLUDED_SCOPES
                default_public = head[0] == "struct" or "struct" in head or "union" in head
                if "class" in head and head.index("class") < (head.index("struct") if "struct" in head else 1 << 30):
                    default_public = False
                self.class_scope(names + [cls], is_public, default_public)
                self.statement_end()
                return
            self.statement_end()
            return
        name, nparams, special = fn
        if name == "operator()" and kind == "class" and public and not special:
            self.calls.setdefault(names[-1], set()).add(nparams)
        if end == "{":
            self.skip_group("{", "}")
            has_body = True
        else:
            self.i += 1
            has_body = False
        if not public or "friend" in head and not has_body:
            return
        if special:
            return
        self.record(names, name, nparams)

    def class_scope(self, names, public, default_public):
        self.scope(names, "class", default_public if public else False) if public else \
            self.skip_class_body()

    def skip_class_body(self):
        self.i -= 1
        self.skip_group("{", "}")

    def skip_angles(self):
        level = 0
        while self.i < len(self.t):
            tok = self.t[self.i]
            if tok == "<":
                level += 1
            elif tok == ">":
                level -= 1
                if level == 0:
                    self.i += 1
                    return
            elif tok == "(":
                self.skip_group("(", ")")
                continue
            self.i += 1

    @staticmethod
    def template_name(tokens):
        """The class a type names: the identifier before its first '<', or its last identifier."""
        if "<" in tokens:
            k = tokens.index("<")
            return tokens[k - 1] if k > 0 and re.match(r"[A-Za-z_]\w*$", tokens[k - 1]) else None
        ids = [t for t in tokens if re.match(r"[A-Za-z_]\w*$", t) and t not in ("const", "inline")]
        return ids[-1] if ids else None

    @staticmethod
    def class_name(head):
        for k, w in enumerate(head):
            if w in ("class", "struct", "union") and k + 1 < len(head):
                nm = head[k + 1]
                if nm in ("alignas",):
                    continue
                return nm if re.match(r"[A-Za-z_]\w*$", nm) else None
        return None

    def function_name(self, head, names, kind):
        """(name, parameter count, special) when head declares a function, else None."""
        level = 0
        for k, tok in enumerate(head):
            if tok == "operator" and level == 0:
                # operator@(…) or operator()(…): the name runs to the '(' of the parameters.
                j = k + 1
                if head[j:j + 2] == ["(", ")"]:
                    j += 2
                while j < len(head) and head[j] != "(":
                    j += 1
                if j >= len(head) or "=" in head[:k]:
                    return None
                return self.finish(head, j, "operator" + "".join(head[k + 1:j]), names, kind, k)
            if tok == "(" and level == 0:
                if k == 0:
                    return None
                prev = head[k - 1]
                if prev == "]" or prev in ("alignas", "decltype", "noexcept", "sizeof", "__attribute__"):
                    level += 1
                    continue
                if "=" in head[:k] or not re.match(r"[A-Za-z_]\w*$", prev):
                    return None  # a variable with an initializer, or not a declaration
                return self.finish(head, k, prev, names, kind, k - 1)
            if tok in "([":
                level += 1
            elif tok in ")]":
                level -= 1
        return None

    def finish(self, head, k, name, names, kind, name_at):
        # Parameters: from head[k] '(' to its matching ')'.
        level, j = 0, k
        while j < len(head):
            if head[j] == "(":
                level += 1
            elif head[j] == ")":
                level -= 1
                if level == 0:
                    break
            j += 1
        params = head[k + 1:j]
        after = head[j + 1:]
        if not params or params == ["void"]:
            count = 0
        else:
            count = len(split_args(params))
        prefix = [w for w in head[:name_at] if w not in ("[", "]") and not w.startswith("[")]
        prefix = [w for w in prefix if w not in ("nodiscard", "maybe_unused")]
        is_ctor = kind == "class" and names and name == names[-1]
        if head[name_at - 1:name_at] == ["~"] or name.startswith("~"):
            return name, count, True
        if not prefix and not is_ctor and not name.startswith("operator"):
            return None  # a macro invocation such as TORCH_MODULE(Dropout)
        special = "=" in after and any(w in ("default", "delete") for w in after)
        return name, count, special

    def record(self, names, name, nparams):
        if any(s in EXCLUDED_SCOPES for s in names) or name.startswith("detail_"):
            return
        if name in ("if", "for", "while", "switch", "return", "sizeof"):
            return
        self.found.setdefault("::".join(names + [name]) + "/" + str(nparams), self.header)


def entry_points(root):
    include = os.path.join(root, "include")
    headers = []
    for base, _, files in os.walk(os.path.join(include, "regula")):
        for f in files:
            if f.endswith(".hpp"):
                headers.append(os.path.join(base, f))
    headers.sort()
    texts = {}
    macros = {}
    for h in headers:
        with open(h, encoding="utf-8") as fh:
            code, m = strip_source(fh.read())
        texts[h] = code
        macros.update(m)
    # Only macros whose expansion declares something (a brace) are expanded; the checking macros
    # are never reached, since function bodies are skipped.
    macros = {k: v for k, v in macros.items() if "{" in v[1]}
    found, calls, objects, aliases = {}, {}, [], {}
    for h in headers:
        rel = os.path.relpath(h, include).replace(os.sep, "/")
        tokens = expand(TOKEN.findall(texts[h]), macros)
        Parser(tokens, rel, found, calls, objects, aliases).scope([], "namespace", True)
    for names, var, typ, header in objects:
        for _ in range(8):  # alias templates naming aliases
            typ = aliases.get(typ, typ)
        if any(s in EXCLUDED_SCOPES for s in names):
            continue
        for n in sorted(calls.get(typ, ())):
            found.setdefault("::".join(names + [var]) + "/" + str(n), header)
    return found


def run_rows(binary):
    """The rows a sweep binary registers, and the integrations it covers."""
    proc = subprocess.run([binary, "sweep: list rows"], stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, universal_newlines=True, check=False)
    rows, covers = set(), set()
    for line in proc.stdout.splitlines():
        if line.startswith("ROW "):
            rows.add(line[4:].strip())
        elif line.startswith("SWEEP-COVERS "):
            covers.add(line.split()[1])
    if proc.returncode != 0 or not rows:
        sys.exit("list_entry_points: %s did not list its rows (exit %d):\n%s"
                 % (binary, proc.returncode, proc.stdout[-2000:]))
    return rows, covers


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--root", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
    ap.add_argument("--check", nargs="+", metavar="BIN", help="sweep binaries to compare with")
    ap.add_argument("--headers", action="store_true", help="print the header of each entry point")
    args = ap.parse_args()
    found = entry_points(args.root)
    if not args.check:
        for e in sorted(found):
            print("%s\t%s" % (e, found[e]) if args.headers else e)
        return 0
    rows, covers = set(), set()
    for b in args.check:
        r, c = run_rows(b)
        rows |= r
        covers |= c
    wanted = {e for e, h in found.items() if INTEGRATIONS.get(h, None) in (None, *covers)}
    missing = sorted(wanted - rows)
    stale = sorted(rows - set(found))
    for e in missing:
        print("no row in the sweep for %s (%s)" % (e, found[e]))
    for e in stale:
        print("a sweep row names %s, which is not a public entry point (renamed or removed?)" % e)
    print("%d entry points checked (%s), %d rows registered; %d without a row, %d stale"
          % (len(wanted), ", ".join(["core"] + sorted(covers)), len(rows), len(missing), len(stale)))
    return 1 if missing or stale else 0


if __name__ == "__main__":
    sys.exit(main())
