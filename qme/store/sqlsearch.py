"""Full-text search with the server's own index: PostgreSQL's tsvector ('simple'
configuration, GIN) and MySQL/MariaDB's InnoDB FULLTEXT in boolean mode.

Both index the words of the text as qme.text.plain_words() spells them, so words
split exactly as in SQLite's FTS5 (unicode61): `a_b`, `/usr/bin`, `x.y` are
several words, case and diacritics do not matter. InnoDB leaves out words shorter
than innodb_ft_min_token_size (3 by default) or longer than its max; such search
words are looked for in the words column with LIKE, which reads every row.
"""

from __future__ import annotations

from sqlalchemy import and_, false, func, literal_column
from sqlalchemy.dialects.mysql import match

from qme.text import plain_words

# PostgreSQL refuses a tsvector over 1 MB: past this many characters of words,
# each word is indexed once (relevance then no longer counts repeats).
PG_WORDS_LIMIT = 300_000
SIMPLE = literal_column("'simple'")


def tokens(words: list[str]) -> list[tuple[str, bool]]:
    """(token, is a prefix) for search words from qme.text.words()."""
    found = []
    for word in words:
        parts = plain_words(word.rstrip("*")).split()
        found += [(part, False) for part in parts]
        if parts and word.endswith("*"):
            found[-1] = (parts[-1], True)
    return found


def index_value(dialect: str, texts: list[str]):
    """The value of the index column (tsv or words) for a task's texts."""
    words = plain_words("\n".join(texts))
    if dialect != "postgresql":
        return words
    if len(words) > PG_WORDS_LIMIT:
        words = " ".join(dict.fromkeys(words.split()))[:PG_WORDS_LIMIT]
    return func.to_tsvector(SIMPLE, words)


def condition(table, dialect: str, words: list[str], token_sizes: tuple[int, int], scan=False):
    """(WHERE clause, relevance) for tasks that have every word. scan: for a few
    rows read one by one, where MySQL's index would gather every match first."""
    found = tokens(words)
    if not found:
        return false(), literal_column("0")
    if dialect == "postgresql":
        query = " & ".join(f"{token}:*" if prefix else token for token, prefix in found)
        tsquery = func.to_tsquery(SIMPLE, query)
        return table.c.tsv.op("@@")(tsquery), func.ts_rank(table.c.tsv, tsquery)
    shortest, longest = token_sizes
    indexed = [] if scan else [(t, p) for t, p in found if shortest <= len(t) <= longest]
    others = [(t, p) for t, p in found if (t, p) not in indexed]
    padded = func.concat(" ", table.c.words, " ")
    clauses = [padded.like(f"% {token}{'%' if prefix else ' %'}") for token, prefix in others]
    if not indexed:
        return and_(*clauses), literal_column("0")
    against = " ".join(f"+{token}{'*' if prefix else ''}" for token, prefix in indexed)
    relevance = match(table.c.words, against=against).in_boolean_mode()
    return and_(relevance, *clauses), relevance
