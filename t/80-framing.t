# Strict HTTP/1 framing in front of libh2o: smuggling primitives, Host rules, obs-fold, early answers to
# Expect: 100-continue and no HTTP/2 on a plain listener. Every refused request gets conflux's JSON error, the
# connection is closed (nothing pipelined behind it runs) and the mock's journal shows that nothing reached it.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use CfTest;
use IO::Select;
use IO::Socket::INET;
use Test::More;
use Time::HiRes qw(time);

my $mock = spawn_mock(<<'EOF');
stubs:
  - path: /echo/{x}
    method: POST
    body: '{"x": "{x}"}'
  - path: /echo/{x}
    body: '{"x": "{x}"}'
  - path: /users/{id}
    body: '{"id": "{id}"}'
EOF
my $m = $mock->port;
my $admin = empty_port();

my $gw = spawn_conflux(<<"EOF");
admin: 127.0.0.1:$admin
backends:
  svc: { url: "http://127.0.0.1:$m" }
routes:
  - path: /api/{rest*}
    methods: [GET, POST]
    proxy: svc
  - path: /u/{id}
    calls:
      - { name: user, backend: svc, path: "/users/{id}" }
EOF

# A refused request: status, conflux's JSON error with a message matching $why, the connection closed, and no
# upstream request at all (CfTest's refused_ok).
sub refused { refused_ok($gw, $mock, @_) }

my $before = $gw->metric('conflux_http1_refused_total{reason="two_content_lengths"}');

refused('two Content-Lengths: the smuggled request never runs',
        "POST /api/echo/x HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 40\r\n\r\n"
            . "helloGET /api/echo/SMUGGLED HTTP/1.1\r\nHost: x\r\n\r\n",
        400, qr/more than one Content-Length/);
is($gw->metric('conflux_http1_refused_total{reason="two_content_lengths"}'), $before + 1, 'counted in metrics by reason');

refused('a Content-Length list', "POST /api/echo/x HTTP/1.1\r\nHost: x\r\nContent-Length: 5, 5\r\n\r\nhello",
        400, qr/more than one Content-Length/);
refused('Content-Length with Transfer-Encoding',
        "POST /api/echo/x HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
            . "GET /api/echo/SMUGGLED HTTP/1.1\r\nHost: x\r\n\r\n",
        400, qr/both Content-Length and Transfer-Encoding/);
refused('Transfer-Encoding: ChUnKeD', "POST /api/echo/x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: ChUnKeD\r\n\r\n0\r\n\r\n",
        400, qr/exactly "chunked"/);
refused('a chunk line ending in a bare LF',
        "POST /api/echo/x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\nhello\r\n0\r\n\r\n", 400, qr/bare LF/);
refused('a chunk size of 0x10',
        "POST /api/echo/x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0x10\r\n0123456789abcdef\r\n0\r\n\r\n"
            . "GET /api/echo/SMUGGLED HTTP/1.1\r\nHost: x\r\n\r\n",
        400, qr/chunk size/);
refused('HTTP/1.1 without Host', "GET /api/echo/x HTTP/1.1\r\n\r\n", 400, qr/without Host/);
refused('two Host fields', "GET /api/echo/x HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400, qr/more than one Host/);
refused('obs-fold on a proxy route (400, not an upstream failure)',
        "GET /api/echo/x HTTP/1.1\r\nHost: x\r\nX-A: a\r\n  folded\r\n\r\n", 400, qr/line folding/);
refused('the HTTP/2 preface on a plain listener', "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 505, qr/HTTP\/2 is not enabled/);

subtest 'a valid chunked body is forwarded' => sub {
    $mock->reset;
    my ($resp) = raw_exchange($gw->port, "POST /api/echo/c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
                                         . "5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-T: t\r\n\r\n");
    like($resp, qr{\AHTTP/1\.1 200 }, 'answered 200');
    my $j = $mock->journal;
    is(scalar @$j, 1, 'one upstream request');
    is($j->[0]{body}, 'hello world', 'with the decoded body');
};

subtest 'keep-alive: the checks stay in front of every request of a connection' => sub {
    $mock->reset;
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $gw->port, Timeout => 5) or die $!;
    my $sel = IO::Select->new($s);
    my $read_response = sub {
        my ($resp, $deadline) = ('', time + 5);
        while (time < $deadline && $resp !~ /\r\n\r\n/) {
            last unless $sel->can_read($deadline - time);
            sysread($s, my $buf, 65536) or last;
            $resp .= $buf;
        }
        my ($len) = $resp =~ /\r\nContent-Length: (\d+)\r\n/i;
        while (defined $len && time < $deadline && length($resp) - index($resp, "\r\n\r\n") - 4 < $len) {
            last unless $sel->can_read($deadline - time);
            sysread($s, my $buf, 65536) or last;
            $resp .= $buf;
        }
        return $resp;
    };
    for my $i (1 .. 3) {
        syswrite($s, "GET /api/echo/k$i HTTP/1.1\r\nHost: x\r\n\r\n");
        like($read_response->(), qr{\AHTTP/1\.1 200 .*"k$i"}s, "request $i answered on the same connection");
    }
    syswrite($s, "POST /api/echo/x HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab");
    like($read_response->(), qr{\AHTTP/1\.1 400 }, 'the fourth, malformed, is refused');
    ok(!sysread($s, my $rest, 1), 'and the connection closed');
    is(scalar @{ $mock->journal }, 3, 'only the three good requests went upstream');
};

subtest 'pipelined requests are all answered, in order' => sub {
    $mock->reset;
    my ($resp) = raw_exchange($gw->port, "POST /api/echo/p1 HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"
                                         . "GET /api/echo/p2 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    like($resp, qr{"p1".*"p2"}s, 'both answered in order');
    is_deeply([map { $_->{path} } @{ $mock->journal }], ['/echo/p1', '/echo/p2'], 'both went upstream');
};

subtest 'HTTP/1.0 without Host: no invented host upstream' => sub {
    $mock->reset;
    my ($resp) = raw_exchange($gw->port, "GET /api/echo/h10 HTTP/1.0\r\n\r\n");
    like($resp, qr{\AHTTP/1\.1 200 }, 'answered 200');
    my $h = $mock->journal->[0]{headers};
    ok(!exists $h->{'x-forwarded-host'}, 'no X-Forwarded-Host') or diag explain $h;
    unlike($h->{forwarded} // '', qr/host=/, 'no host= in Forwarded');
};

subtest 'Expect: 100-continue' => sub {
    $mock->reset;
    my $t0 = time;
    my ($resp, $closed) = raw_exchange($gw->port, "POST /u/1 HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n");
    unlike($resp, qr{100 Continue}, 'a request the route refuses gets no 100 Continue');
    like($resp, qr{\AHTTP/1\.1 405 .*\r\nAllow: GET, HEAD\r\n}s, '405 with Allow at once');
    ok($closed && time - $t0 < 2, 'and the connection closes without waiting for the body');
    ($resp) = raw_exchange($gw->port, "POST /nowhere HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n");
    like($resp, qr{\AHTTP/1\.1 404 }, 'no route: 404 at once');

    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $gw->port, Timeout => 5) or die $!;
    syswrite($s, "POST /api/echo/e HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5\r\nConnection: close\r\n\r\n");
    my $sel = IO::Select->new($s);
    my $got = '';
    $sel->can_read(5) and sysread($s, $got, 65536);
    like($got, qr{\AHTTP/1\.1 100 Continue\r\n\r\n}, 'a route that takes the request: 100 Continue');
    syswrite($s, 'hello');
    my $rest = '';
    while ($sel->can_read(5)) { sysread($s, my $b, 65536) or last; $rest .= $b }
    like($got . $rest, qr{HTTP/1\.1 200 .*"e"}s, 'then the answer');
    is($mock->journal->[0]{body}, 'hello', 'the body went upstream');
};

subtest 'no h2c upgrade on a plain listener' => sub {
    my ($resp) = raw_exchange($gw->port, "GET /api/echo/up HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\n"
                                         . "HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n", timeout => 2);
    like($resp, qr{\AHTTP/1\.1 200 }, 'answered over HTTP/1.1, not 101');
};

done_testing;
