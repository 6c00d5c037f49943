/*
 * B2 file-name percent-encoding (plugins/b2/b2name.c), byte by byte against
 * the rules in B2's string-encoding table: '/' and the minimal safe set pass,
 * '+' and every other byte (UTF-8 included) become upper-case %XX.
 */
#include <stdlib.h>
#include <string.h>

#include "tap.h"
#include "../plugins/b2/b2name.h"

static void enc_is(const char *in, const char *want, const char *what)
{
	char *got = b2_name_encode(in);

	is_str(got ? got : "(null)", want, "encode %s", what);
	free(got);
}

int main(void)
{
	char seg[300], name[1100];

	enc_is("wal/000000010000000000000001", "wal/000000010000000000000001",
	       "a WAL key unchanged");
	enc_is("a b", "a%20b", "space as %20");
	enc_is("a+b", "a%2Bb", "plus as %2B (B2 reads + as space)");
	enc_is("100%", "100%25", "percent sign");
	enc_is("-._~!$'()*;=:@", "-._~!$'()*;=:@", "the minimal safe set unchanged");
	enc_is("a/b//c/", "a/b//c/", "slashes never encoded");
	enc_is("\xc3\xa9t\xc3\xa9", "%C3%A9t%C3%A9", "UTF-8 bytes, upper-case hex");
	enc_is("\xe2\x82\xac", "%E2%82%AC", "euro sign");
	enc_is("\"#&,<>?[\\]^`{|}", "%22%23%26%2C%3C%3E%3F%5B%5C%5D%5E%60%7B%7C%7D",
	       "reserved and unsafe ASCII");
	enc_is("", "", "empty name");

	ok(b2_name_valid("repo/wal/x"), "plain name is valid");
	ok(!b2_name_valid(""), "empty name is invalid");
	ok(!b2_name_valid("a\tb"), "control character is invalid");
	ok(!b2_name_valid("a\x7f"), "DEL is invalid");
	memset(seg, 'x', 251);
	seg[251] = '\0';
	ok(!b2_name_valid(seg), "a 251-byte segment is invalid");
	seg[250] = '\0';
	ok(b2_name_valid(seg), "a 250-byte segment is valid");
	memset(name, 'a', 1025);
	for (int i = 100; i < 1025; i += 100)
		name[i] = '/';
	name[1025] = '\0';
	ok(!b2_name_valid(name), "1025 bytes is too long");
	name[1024] = '\0';
	ok(b2_name_valid(name), "1024 bytes is fine");
	done_testing();
}
