# Kept so that tests written against the old path keep working: the
# integration library lives in tests/lib/ (see tests/README.md).
. "${top_srcdir:-.}/tests/lib/integration.sh"
