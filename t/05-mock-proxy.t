# conflux-mock proxy stubs: a request forwarded to a real service (a second mock here) and its answer returned as is;
# hop-by-hop fields dropped both ways; delay and fault_rate in front of the service; 502 for a dead upstream, 504 for a
# slow one; local stubs beat the file-level fallback; proxied requests run concurrently.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use CfTest;
use JSON::PP;
use IO::Socket::INET;
use Time::HiRes qw(time);
use Test::More;

my $real = spawn_mock(<<'EOF2');
stubs:
  - path: /echo/{id}
    method: POST
    status: 201
    headers: { X-Real: 'yes', Content-Type: 'application/octet-stream', Keep-Alive: 'timeout=5', Upgrade: foo,
               Proxy-Connection: keep-alive, Set-Cookie: 'a=1; Path=/' }
    body: "bytes: \x01\x02 ~ {id}"
  - path: /slow
    delay: 200ms
    body: slow
  - path: /slower
    delay: 3s
    body: too late
  - path: /plain
    body: plain
EOF2
my $rp = $real->port;
my $dead = empty_port();

my $mock = spawn_mock(<<"EOF2", args => ['--seed', '42']);
proxy: http://127.0.0.1:$rp
proxy_timeout: 1s
stubs:
  - path: /local
    body: answered locally
  - path: /plain
    match: { query: { local: 'yes' } }
    body: local plain
  - path: /delayed
    proxy: http://127.0.0.1:$rp
    delay: 300ms
  - path: /plain
    name: flaky
    match: { headers: { X-Flaky: '1' } }
    proxy: http://localhost:$rp
    fault: 503
    fault_rate: 0.5
  - path: /dead
    proxy: http://127.0.0.1:$dead
  - path: /{rest*}
    name: to-slow
    match: { headers: { X-Slow: '1' } }
    proxy: http://127.0.0.1:$rp
    proxy_timeout: 1s
EOF2
my $mp = $mock->port;

subtest 'forwarded as sent, answered as the service answered' => sub {
    $real->reset;
    my $r = http_request('POST', "http://127.0.0.1:$mp/echo/7?x=1&y=%20z",
                         {'X-Custom' => 'c1', 'Content-Type' => 'text/plain', 'TE' => 'trailers',
                          'Connection' => 'X-Hop', 'X-Hop' => 'drop me'}, "body\x00\xff");
    is($r->{status}, 201, 'the service\'s status');
    is($r->{body}, "bytes: \x01\x02 ~ 7", 'the service\'s body, byte for byte');
    is($r->{headers}{'x-real'}, 'yes', 'its header');
    is($r->{headers}{'content-type'}, 'application/octet-stream', 'its Content-Type');
    is($r->{headers}{'set-cookie'}, 'a=1; Path=/', 'its Set-Cookie');
    ok(!exists $r->{headers}{$_}, "hop-by-hop $_ not returned") for qw(keep-alive upgrade proxy-connection);
    my $seen = $real->last_request;
    is($seen->{method}, 'POST', 'method forwarded');
    is($seen->{path}, '/echo/7', 'path forwarded');
    is($seen->{query}, 'x=1&y=%20z', 'query forwarded as sent');
    is($seen->{headers}{'x-custom'}, 'c1', 'a header forwarded');
    is($seen->{headers}{'content-type'}, 'text/plain', 'Content-Type forwarded');
    is($seen->{body_size}, 6, 'the body forwarded whole');
    like($seen->{body}, qr/^body/, 'the body forwarded');
    ok(!exists $seen->{headers}{te}, 'hop-by-hop TE not forwarded');
    my $j = $mock->last_request;
    is($j->{stub}, 'proxy', 'journaled under the fallback stub');
    is($j->{proxied_to}, "http://127.0.0.1:$rp", 'with proxied_to');
    is($j->{status}, 201, 'and the status returned');

    # a field the Connection field names is hop-by-hop too (HTTP::Tiny sets Connection itself: a raw request)
    $real->reset;
    my $raw = raw_request($mp, "GET /plain HTTP/1.1\r\nHost: x\r\nConnection: close, X-Hop\r\nX-Hop: drop\r\n"
                               . "Keep-Alive: 5\r\nX-Stay: 1\r\n\r\n");
    is($raw->{status}, 200, 'raw request proxied');
    $seen = $real->last_request;
    is($seen->{headers}{'x-stay'}, '1', 'an end-to-end field forwarded');
    ok(!exists $seen->{headers}{$_}, "$_ not forwarded") for qw(x-hop keep-alive);
    is($seen->{headers}{host}, "127.0.0.1:$rp", 'Host names the service');
    like($seen->{headers}{via}, qr/^1\.1 conflux-mock-\d+$/, 'Via names the mock');
};

subtest 'a stub that matches answers locally; others go to the fallback' => sub {
    $real->reset;
    my $r = http_get("http://127.0.0.1:$mp/local");
    is($r->{body}, 'answered locally', 'local stub');
    $r = http_get("http://127.0.0.1:$mp/plain?local=yes");
    is($r->{body}, 'local plain', 'a local stub whose condition holds');
    is(scalar @{ $real->journal }, 0, 'the service saw neither');
    $r = http_get("http://127.0.0.1:$mp/plain?local=no");
    is($r->{body}, 'plain', 'condition missed: proxied');
    $r = http_get("http://127.0.0.1:$mp/nowhere");
    is($r->{status}, 404, 'the service\'s own 404 comes back');
    like($r->{body}, qr/no stub/, 'with the service\'s body');
    is(scalar @{ $real->journal }, 2, 'the service saw those two');
    ok(!defined $mock->last_request->{closest}, 'not journaled as unmatched by the mock');
};

subtest 'delay on a proxy stub comes before forwarding' => sub {
    my $r = http_get("http://127.0.0.1:$mp/delayed");
    is($r->{status}, 404, 'forwarded (the service has no /delayed)');
    cmp_ok($r->{elapsed}, '>=', 0.29, 'at least the 300ms delay');
    cmp_ok($r->{elapsed}, '<', 2, 'and not much more');
    is($mock->last_request->{delay_ms}, 300, 'journaled delay');
};

subtest 'fault_rate: a seeded fraction fails, the rest is forwarded' => sub {
    $real->reset;
    my (%by, @seq);
    for (1 .. 40) {
        my $r = http_get("http://127.0.0.1:$mp/plain", {'X-Flaky' => '1'});
        $by{ $r->{status} }++;
        push @seq, $r->{status};
    }
    my $faulted = $by{503} // 0;
    cmp_ok($faulted, '>=', 10, "about half failed with 503 ($faulted/40)");
    cmp_ok($faulted, '<=', 30, 'but not all');
    is(($by{200} // 0) + $faulted, 40, 'the others got the service\'s 200');
    is(scalar @{ $real->journal('/plain') }, 40 - $faulted, 'the service saw exactly the forwarded ones');
    # the same seed gives the same sequence: a second mock from the same file
    my $again = spawn_mock(<<"EOF3", args => ['--seed', '42']);
stubs:
  - path: /plain
    name: flaky
    match: { headers: { X-Flaky: '1' } }
    proxy: http://localhost:$rp
    fault: 503
    fault_rate: 0.5
EOF3
    my @seq2 = map { http_get('http://127.0.0.1:' . $again->port . '/plain', {'X-Flaky' => '1'})->{status} } 1 .. 40;
    is("@seq2", "@seq", 'the same seed draws the same requests');
    $again->stop;
};

subtest 'a dead upstream answers 502, a slow one 504 after proxy_timeout' => sub {
    my $r = http_get("http://127.0.0.1:$mp/dead");
    is($r->{status}, 502, 'refused: 502');
    my $b = eval { decode_json($r->{body}) } // {};
    is($b->{error}, 'upstream unreachable', 'a JSON error');
    is($b->{upstream}, "http://127.0.0.1:$dead", 'naming the upstream');
    is($mock->last_request->{status}, 502, 'journaled with 502');
    $r = http_get("http://127.0.0.1:$mp/slower", {'X-Slow' => '1'});
    is($r->{status}, 504, 'slow: 504');
    cmp_ok($r->{elapsed}, '>=', 0.95, 'after the 1s timeout');
    cmp_ok($r->{elapsed}, '<', 2.5, 'not after the service\'s 3s');
    is(eval { decode_json($r->{body})->{error} }, 'upstream timeout', 'a JSON error');
    is($mock->last_request->{status}, 504, 'journaled with 504');
};

subtest 'a hostile upstream fails only its request' => sub {
    # a raw server answering each connection with the next canned response, then closing
    my @answers = (
        ["HTTP/1.1 200 OK\r\nContent-Length: abc\r\n\r\nxx", 502, qr/invalid content-length/i],
        ["HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nxx", 502, qr/transfer-encoding other than chunked/i],
        ["HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n", 502, qr/both Content-Length and Transfer-Encoding/],
        ["HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd", 502, qr/two different Content-Length/],
        ["\x16\x03\x01 not http at all\r\n\r\n", 502, qr/not HTTP/],
        ["HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", 502, qr/before the end/],
        # the strictness of the gateway's own response parser: "0x10" is no chunk size (picohttpparser's decoder read it as
        # 0 with an extension), a bare LF ends no line, a folded field is refused
        ["HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0x10\r\n0123456789abcdef\r\n0\r\n\r\n", 502, qr/chunk-size/],
        ["HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\nabc\r\n0\r\n\r\n", 502, qr/bare LF|malformed/],
        ["HTTP/1.1 200 OK\r\nX-A: 1\r\n folded\r\nContent-Length: 0\r\n\r\n", 502, qr/fold|malformed/],
        ["HTTP/1.1 200 OK\r\nContent-Length: 99999999999\r\n\r\n", 502, qr/64 MiB/],
        ["HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-C: 1\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n",
         200, 'abcde'],
        ["HTTP/1.1 203 Fine\r\nX-C: 2\r\n\r\nuntil close", 203, 'until close'],
    );
    my $listen = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0, Listen => 16, ReuseAddr => 1) or die $!;
    my $port = $listen->sockport;
    my $srv = background(sub {
        alarm 30; # never outlive a failed test
        for my $a (@answers) {
            my $c = $listen->accept or return 'accept failed';
            my $req = '';
            while ($req !~ /\r\n\r\n/) { my $n = sysread($c, $req, 4096, length $req) or last }
            print {$c} $a->[0];
            close $c;
        }
        return 'served';
    });
    close $listen;
    my $m = spawn_mock("proxy: http://127.0.0.1:$port\n");
    for my $a (@answers) {
        my $r = http_get('http://127.0.0.1:' . $m->port . '/x');
        is($r->{status}, $a->[1], "status $a->[1]");
        if (ref $a->[2]) { like($r->{body}, $a->[2], 'the reason') } else { is($r->{body}, $a->[2], 'the body') }
        # the service's own reason phrase comes through (the parser hands it over with the head)
        is($r->{reason}, 'Fine', 'the reason phrase of a 203 Fine') if $a->[1] == 203;
    }
    is($srv->wait, 'served', 'every answer was asked for once');
    is(http_get('http://127.0.0.1:' . $m->port . '/__mock/stats')->{status}, 200, 'the mock still answers');
};

subtest 'a proxy pointing back at its own mock is a loop: 508' => sub {
    my $port = empty_port();
    my $m = spawn_mock("listen: 127.0.0.1:$port\nproxy: http://127.0.0.1:$port\n");
    my $r = http_get("http://127.0.0.1:$port/x");
    is($r->{status}, 508, '508 Loop Detected');
    is(eval { decode_json($r->{body})->{error} }, 'proxy loop', 'a JSON error');
    is(scalar @{ $m->journal('/x') }, 2, 'the request went round once');
};

subtest 'proxied requests run concurrently' => sub {
    my ($results, $wall) = http_parallel(50, "http://127.0.0.1:$mp/slow");
    is(scalar(grep { $_->{status} == 200 } @$results), 50, '50 answered 200');
    cmp_ok($wall, '<', 3, "50 x 200ms upstream delay took ${wall}s, far under 10s");
};

subtest 'a bad proxy URL is refused at load' => sub {
    my $dir = tmpdir();
    for my $case (['http://example.com:80', qr/numeric IPv4/], ['https://127.0.0.1:1', qr/http:\/\//],
                  ['http://127.0.0.1:1/base', qr/no path/], ['http://127.0.0.1:99999', qr/port/]) {
        my $f = write_file("$dir/bad.yaml", "listen: 127.0.0.1:" . empty_port() . "\nstubs:\n  - path: /x\n    proxy: $case->[0]\n");
        my $res = run_cmd([bindir() . '/conflux-mock', '-c', $f]);
        isnt($res->{code}, 0, "$case->[0] refused");
        like($res->{err}, $case->[1], 'saying why');
    }
    my $f = write_file("$dir/bad.yaml", "listen: 127.0.0.1:" . empty_port() . "\nstubs:\n  - path: /x\n    proxy_timeout: 1s\n");
    my $res = run_cmd([bindir() . '/conflux-mock', '-c', $f]);
    isnt($res->{code}, 0, 'proxy_timeout without proxy: refused, not ignored');
    like($res->{err}, qr/bad\.yaml:4:\d+: stubs\[0\]\.proxy_timeout: needs proxy:/, 'saying why, and where');
};

done_testing;
