# conflux-mock --record DIR: the answers a real service (a second mock here) gave through the proxy are written at stop
# as a stubs file that conflux-mock -c loads and that replays them: same status, headers and byte-identical bodies
# (binary, braces), repeated header fields kept, one stub per method + path + query (the first answer wins), without
# asking the service again.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use CfTest;
use Test::More;

my $dir = tmpdir();
my $bin = "\x00\x01\xff\xfe binary \x00\xff end";
write_file("$dir/real.bin", $bin);

my $real = spawn_mock(<<"EOF2");
stubs:
  - path: /users/{id}
    headers: { Content-Type: application/json, X-Real: 'yes', Cache-Control: no-store, Set-Cookie: ['a=1; Path=/', 'b=2'] }
    body: '{"id": "{id}", "name": "Ada"}'
  - path: /bin
    headers: { Content-Type: application/octet-stream }
    body_file: $dir/real.bin
  - path: /brace
    headers: { Content-Type: text/plain }
    body: 'word: {query.w}, id: {query.w}'
  - path: /search
    body: '{"q": "{query.q}", "page": "{query.page}"}'
  - path: /seq
    sequence: [201, 202]
    body: 'seq'
  - path: /orders
    method: POST
    status: 201
    headers: { Location: /orders/7 }
    body: 'created'
EOF2
my $rp = $real->port;

my $out = "$dir/rec";
my $rec = spawn_mock(<<"EOF2", args => ['--record', $out]);
proxy: http://127.0.0.1:$rp
stubs:
  - path: /local
    body: answered locally
EOF2

my @reqs = (
    ['GET', '/users/42'],
    ['GET', '/bin'],
    ['GET', '/brace?w=%7Bid%7D'],
    ['GET', '/search?q=a%20b&page=2'],
    ['GET', '/search?q=x'],
    ['GET', '/seq'],
    ['GET', '/seq'],
    ['POST', '/orders', 'qty=1'],
    ['GET', '/local'],
);
my @through;
subtest 'requests through the recording mock reach the real service' => sub {
    for my $r (@reqs) {
        push @through, http_request($r->[0], $rec->url($r->[1]), {}, $r->[2]);
    }
    is($through[1]{body}, $bin, 'the binary body passes through');
    is($through[2]{body}, 'word: {id}, id: {id}', 'a body with {id} passes through');
    is($through[5]{status}, 201, 'first /seq answer');
    is($through[6]{status}, 202, 'second /seq answer differs');
    is(http_request('GET', $rec->url('/search?page=2&q=a+b'))->{body}, $through[3]{body}, 'the same query, reordered and re-encoded');
    is($through[0]{headers}{'set-cookie'}, 'a=1; Path=/, b=2', 'a header list in a stub: the field once per value');
    is(scalar @{ $real->journal }, 9, 'the real service saw every proxied request (not /local)');
};

subtest 'the recording is written at stop' => sub {
    ok(!-e "$out/recorded.yaml", 'nothing is written before stop');
    $rec->stop;
    ok(-f "$out/recorded.yaml", 'recorded.yaml written') or return;
    my $yaml = CfTest::slurp("$out/recorded.yaml");
    my $n = () = $yaml =~ /^  - method:/mg;
    is($n, 7, 'one stub per method + path + query conditions (not a second /seq nor /search?page=2&q=a+b; /local is not recorded)');
    unlike($yaml, qr/^\s+"?(?:Date|Server|Content-Length)"?:/mi, 'no Date, Server or Content-Length in the headers');
    unlike($yaml, qr/proxy/, 'no proxy in the replay file');
    like($yaml, qr/"Set-Cookie": \["a=1; Path=\/", "b=2"\]/, 'a field sent twice is recorded as a list of its values');
    like($rec->log_text, qr/recorded 7 exchanges/, 'the log says how many were recorded');
};

# loaded from where it was written: the stubs file names its bodies relative to itself
my $rport = CfTest::empty_port();
my $replay = CfTest::spawn(name => 'replay', port => $rport, class => 'CfTest::Mock',
                           cmd => [CfTest::bindir() . '/conflux-mock', '-c', "$out/recorded.yaml", '--port', $rport]);

subtest 'the replay answers as the real service did, without it' => sub {
    $real->reset;
    my @skip_second_seq = (0 .. 5, 7);
    for my $i (0 .. $#reqs - 1) {
        my $r = $reqs[$i];
        my $got = http_request($r->[0], $replay->url($r->[1]), {}, $r->[2]);
        my $want = $i == 6 ? $through[5] : $through[$i];    # the first /seq answer is the one kept
        is($got->{status}, $want->{status}, "$r->[0] $r->[1]: status");
        ok($got->{body} eq $want->{body}, "$r->[0] $r->[1]: byte-identical body")
            or diag(explain([$got->{body}, $want->{body}]));
        for my $h (qw(content-type x-real cache-control location set-cookie)) {
            is($got->{headers}{$h}, $want->{headers}{$h}, "$r->[0] $r->[1]: $h") if defined $want->{headers}{$h};
        }
    }
    is(http_get($replay->url('/local'))->{status}, 404, '/local was answered locally, not recorded');
    is(scalar @{ $real->journal }, 0, 'the real service was not asked');
};

subtest 'query conditions keep recorded queries apart' => sub {
    is(http_get($replay->url('/search?page=2&q=a+b'))->{body}, $through[3]{body}, 'same query, other order and encoding');
    is(http_get($replay->url('/search?q=x'))->{body}, $through[4]{body}, 'the other query');
    is(http_get($replay->url('/brace?w=other'))->{status}, 404, 'an unrecorded query value is not matched');
};

subtest 'nothing proxied, nothing recorded: an empty stubs file that loads' => sub {
    my $d = "$dir/empty";
    my $m = spawn_mock("stubs:\n  - path: /x\n    body: x\n", args => ['--record', $d]);
    is(http_get($m->url('/x'))->{body}, 'x', 'a local stub');
    $m->stop;
    ok(-f "$d/recorded.yaml", 'written') or return;
    like(CfTest::slurp("$d/recorded.yaml"), qr/0 exchanges/, 'it says 0 exchanges');
    my $p = CfTest::empty_port();
    my $e = CfTest::spawn(name => 'empty-replay', port => $p, class => 'CfTest::Mock',
                          cmd => [CfTest::bindir() . '/conflux-mock', '-c', "$d/recorded.yaml", '--port', $p]);
    is(http_get($e->url('/x'))->{status}, 404, 'it loads, with no stubs');
};

subtest 'a header list in a stub: strings only, never empty' => sub {
    my $d = tmpdir();
    for my $case (['[]', qr/bad\.yaml:4:\d+: stubs\[0\]\.headers\.Set-Cookie: an empty list/],
                  ['[a=1, {b: 2}]', qr/bad\.yaml:4:\d+: stubs\[0\]\.headers\.Set-Cookie: a header value is a string, or a list/],
                  ['[a=1, "b\nc"]', qr/line break/]) {
        my $f = write_file("$d/bad.yaml", "listen: 127.0.0.1:" . CfTest::empty_port() . "\nstubs:\n  - path: /x\n    headers: { Set-Cookie: $case->[0] }\n");
        my $res = run_cmd([CfTest::bindir() . '/conflux-mock', '-c', $f]);
        isnt($res->{code}, 0, "$case->[0] refused");
        like($res->{err}, $case->[1], 'saying why, and where');
    }
};

done_testing;
