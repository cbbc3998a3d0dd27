"""Exports of approved proposals: the client's PDF rationale, custodian trade files with lot
instructions, and the order memorandum (see ``docs/exports.md``).

- ``documents``: the plain data the writers read (no Django): orders, blocks, lot instructions,
  the rationale document, and ``RenderedFile``;
- ``tradefiles``: custodian validation and the Schwab-style, Fidelity-style and generic writers;
- ``pdf``: the WeasyPrint rendering of the rationale;
- ``context``: builds the documents from a proposal in the database;
- ``services``: ``export_proposal``, the one write path (atomic, idempotent, audited).
"""
