"""The cell helpers of the notebook generators in this folder: md(text) and code(text, tags) append to `cells`."""
import nbformat as nbf

cells = []


def md(s):
    cells.append(nbf.v4.new_markdown_cell(s.strip("\n")))


def code(s, tags=None):
    c = nbf.v4.new_code_cell(s.strip("\n"))
    if tags:
        c.metadata["tags"] = tags
    cells.append(c)


class Patch:
    """An executed notebook edited in place by a patch script (`patch_NN.py [PATH]`): find a cell by the start of its
    source, replace a unique snippet in it, insert cells, write it back."""

    def __init__(self, default_path: str, marker: str):
        import sys

        self.path = sys.argv[1] if len(sys.argv) > 1 else default_path
        self.nb = nbf.read(self.path, as_version=4)
        self.cells = self.nb.cells
        assert not any(marker in c.source for c in self.cells), f"{self.path} is already patched ({marker!r} found)"

    def find(self, prefix: str) -> int:
        hits = [i for i, c in enumerate(self.cells) if c.source.startswith(prefix)]
        assert len(hits) == 1, (prefix, hits)
        return hits[0]

    def replace(self, i: int, old: str, new: str) -> None:
        assert self.cells[i].source.count(old) == 1, (i, old)
        self.cells[i].source = self.cells[i].source.replace(old, new)

    def write(self) -> None:
        nbf.write(self.nb, self.path)
        print(f"patched {self.path}: {len(self.cells)} cells")
