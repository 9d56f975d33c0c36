"""Reading stories to import (no database): CSV and pasted lists, row errors, limits."""

import pytest

from stories import imports
from stories.exports import csv_cell
from stories.imports import ImportRefused


def errors(rows) -> dict[int, list[str]]:
    return {row.line: row.errors for row in rows if row.errors}


def test_csv_reads_columns_by_header_name_in_any_order_and_case():
    rows = imports.parse_csv(
        "Estimate,Link,TITLE,Key,Position\n"
        "5,https://example.com/1,Login page,PROJ-1,3\n"
        ",,Logout,,\n"
    )
    assert [row.values for row in rows] == [
        {
            "estimate": "5",
            "url": "https://example.com/1",
            "title": "Login page",
            "external_key": "PROJ-1",
        },
        {"estimate": "", "url": "", "title": "Logout", "external_key": ""},
    ]
    assert errors(rows) == {}


def test_csv_with_semicolons_and_a_quoted_multiline_description():
    rows = imports.parse_csv('title;description\n"Sign up";"first line\nsecond; line"\n')
    assert rows[0].values == {"title": "Sign up", "description": "first line\nsecond; line"}


def test_csv_without_a_title_column_is_refused():
    with pytest.raises(ImportRefused) as refused:
        imports.parse_csv("name,points\nLogin,3\n")
    assert refused.value.code == "no_title_column"


def test_every_row_error_is_reported_with_its_line():
    text = (
        "title,key,link,estimate\n"
        ",PROJ-1,,\n"  # line 2: no title
        f"{'x' * 201},PROJ-2,,\n"  # 3: too long
        "Third,PROJ-1,,\n"  # 4: key repeats line 2
        "Fourth,,ftp://example.com,\n"  # 5: not http(s)
        "Fifth,,not a link,\n"  # 6
        "Sixth,,,way too long an estimate\n"  # 7
        "Seventh,HAS SPACE,,\n"  # 8
        "Fine,PROJ-9,https://example.com/9,8\n"  # 9
    )
    found = errors(imports.parse_csv(text))
    assert set(found) == {2, 3, 4, 5, 6, 7, 8}
    assert found[2] == ["The title is missing."]
    assert "longer than 200" in found[3][0]
    assert found[4] == ["The key PROJ-1 repeats line 2."]
    assert "http(s)" in found[5][0]
    assert "http(s)" in found[6][0]
    assert "not a card" in found[7][0]
    assert "spaces" in found[8][0]


def test_a_list_takes_keys_and_tab_separated_links():
    rows = imports.parse_list(
        "Plain title\n\n  PROJ-7 Keyed title  \nLinked\thttps://example.com/x\n"
        "ABC-12: Both\thttps://example.com/y\nnot-a-key title\n"
    )
    assert [row.values for row in rows] == [
        {"title": "Plain title"},
        {"external_key": "PROJ-7", "title": "Keyed title"},
        {"url": "https://example.com/x", "title": "Linked"},
        {"url": "https://example.com/y", "external_key": "ABC-12", "title": "Both"},
        {"title": "not-a-key title"},
    ]
    assert [row.line for row in rows] == [1, 3, 4, 5, 6]


def test_files_must_be_utf8_with_or_without_a_bom():
    assert imports.decode("\ufefftitle\nÜber\n".encode()) == "title\nÜber\n"
    with pytest.raises(ImportRefused) as refused:
        imports.decode("title\nÜber\n".encode("latin-1"))
    assert refused.value.code == "bad_encoding"


def test_size_and_row_count_are_capped():
    with pytest.raises(ImportRefused) as refused:
        imports.decode(b"title\n" + b"x" * imports.MAX_IMPORT_BYTES)
    assert refused.value.code == "too_large"
    with pytest.raises(ImportRefused) as refused:
        imports.parse_list("story\n" * (imports.MAX_IMPORT_ROWS + 1))
    assert refused.value.code == "too_many_rows"
    assert len(imports.parse_list("story\n" * imports.MAX_IMPORT_ROWS)) == imports.MAX_IMPORT_ROWS


def test_nul_and_broken_csv_are_refused():
    with pytest.raises(ImportRefused) as refused:
        imports.parse_csv("title\nA\x00B\n")
    assert refused.value.code == "not_text"
    with pytest.raises(ImportRefused) as refused:
        imports.parse_csv('title\n"unterminated\n')
    assert refused.value.code == "bad_csv"


@pytest.mark.parametrize(
    "value", ["=1+1", "+SUM(A1)", "-2", "@cmd", "\tx", "'=already quoted", "''-x", "plain", "a=b"]
)
def test_formula_cells_are_quoted_on_export_and_unquoted_on_import(value):
    cell = csv_cell(value)
    if value[0] in "=+-@\t" or value.startswith(("'=", "''-")):
        assert cell == "'" + value
    else:
        assert cell == value
    assert imports.unescape_cell(cell) == value


def test_json_items_keep_known_fields_only():
    rows = imports.rows_from_items(
        [{"title": "A", "external_key": "K-1", "estimate": 3, "id": "x", "position": 1}, {}]
    )
    assert rows[0].values == {"title": "A", "external_key": "K-1", "estimate": "3"}
    assert rows[1].errors == ["The title is missing."]
