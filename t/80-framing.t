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
use JSON::PP;
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

# Writes $bytes on a new connection and reads until the server closes it (or $timeout s pass).
# Returns (response text, 1 if the server closed the connection).
sub exchange {
    my ($bytes, $timeout) = @_;
    $timeout //= 5;
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $gw->port, Timeout => 5) or die $!;
    syswrite($s, $bytes);
    my ($resp, $closed, $deadline) = ('', 0, time + $timeout);
    my $sel = IO::Select->new($s);
    while (time < $deadline) {
        last unless $sel->can_read($deadline - time);
        my $n = sysread($s, my $buf, 65536);
        if (!$n) { $closed = 1; last }
        $resp .= $buf;
    }
    return ($resp, $closed);
}

sub journal {
    my $r = http_get("http://127.0.0.1:$m/__mock/requests");
    return decode_json($r->{body});
}

sub reset_journal { http_request('POST', "http://127.0.0.1:$m/__mock/reset") }

sub metric {
    my ($name) = @_;
    my $body = http_get("http://127.0.0.1:$admin/metrics")->{body};
    return $body =~ /^\Q$name\E (\d+)$/m ? $1 : 0;
}

# A refused request: status, conflux's JSON error with a message matching $why, the connection closed, and no
# upstream request at all.
sub refused {
    my ($name, $bytes, $status, $why) = @_;
    subtest $name => sub {
        reset_journal();
        my ($resp, $closed) = exchange($bytes);
        like($resp, qr{\AHTTP/1\.1 $status }, "answered $status");
        like($resp, qr{\r\nConnection: close\r\n}i, 'says Connection: close');
        ok($closed, 'and closes the connection');
        my ($body) = $resp =~ /\r\n\r\n(.*)\z/s;
        my $doc = eval { decode_json($body // '') };
        ok($doc && $doc->{message} =~ $why, "JSON error says why") or diag($resp);
        is(scalar @{ journal() }, 0, 'nothing reached the upstream') or diag explain journal();
    };
}

my $before = metric('conflux_http1_refused_total{reason="two_content_lengths"}');

refused('two Content-Lengths: the smuggled request never runs',
        "POST /api/echo/x HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 40\r\n\r\n"
            . "helloGET /api/echo/SMUGGLED HTTP/1.1\r\nHost: x\r\n\r\n",
        400, qr/more than one Content-Length/);
is(metric('conflux_http1_refused_total{reason="two_content_lengths"}'), $before + 1, 'counted in metrics by reason');

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
    reset_journal();
    my ($resp) = exchange("POST /api/echo/c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
                          . "5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-T: t\r\n\r\n");
    like($resp, qr{\AHTTP/1\.1 200 }, 'answered 200');
    my $j = journal();
    is(scalar @$j, 1, 'one upstream request');
    is($j->[0]{body}, 'hello world', 'with the decoded body');
};

subtest 'keep-alive: the checks stay in front of every request of a connection' => sub {
    reset_journal();
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
    is(scalar @{ journal() }, 3, 'only the three good requests went upstream');
};

subtest 'pipelined requests are all answered, in order' => sub {
    reset_journal();
    my ($resp) = exchange("POST /api/echo/p1 HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"
                          . "GET /api/echo/p2 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    like($resp, qr{"p1".*"p2"}s, 'both answered in order');
    is_deeply([map { $_->{path} } @{ journal() }], ['/echo/p1', '/echo/p2'], 'both went upstream');
};

subtest 'HTTP/1.0 without Host: no invented host upstream' => sub {
    reset_journal();
    my ($resp) = exchange("GET /api/echo/h10 HTTP/1.0\r\n\r\n");
    like($resp, qr{\AHTTP/1\.1 200 }, 'answered 200');
    my $h = journal()->[0]{headers};
    ok(!exists $h->{'x-forwarded-host'}, 'no X-Forwarded-Host') or diag explain $h;
    unlike($h->{forwarded} // '', qr/host=/, 'no host= in Forwarded');
};

subtest 'Expect: 100-continue' => sub {
    reset_journal();
    my $t0 = time;
    my ($resp, $closed) = exchange("POST /u/1 HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n");
    unlike($resp, qr{100 Continue}, 'a request the route refuses gets no 100 Continue');
    like($resp, qr{\AHTTP/1\.1 405 .*\r\nAllow: GET, HEAD\r\n}s, '405 with Allow at once');
    ok($closed && time - $t0 < 2, 'and the connection closes without waiting for the body');
    ($resp) = exchange("POST /nowhere HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n");
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
    is(journal()->[0]{body}, 'hello', 'the body went upstream');
};

subtest 'no h2c upgrade on a plain listener' => sub {
    my ($resp) = exchange("GET /api/echo/up HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\n"
                          . "HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n", 2);
    like($resp, qr{\AHTTP/1\.1 200 }, 'answered over HTTP/1.1, not 101');
};

done_testing;
