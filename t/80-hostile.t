# Hostile input: template injection never changes the upstream URL; malformed or oversized requests get a 4xx.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use CfTest;
use IO::Socket::INET;
use Test::More;

my $mock = spawn_mock(<<'EOF');
stubs:
  - path: /users/{id}
    body: '{"ok": true}'
  - path: /search
    body: '{"ok": true}'
  - path: /files/{rest*}
    body: '{"ok": true}'
  - path: /x
    method: POST
    body: '{"posted": true}'
  - path: /slow
    body: '{"ok": true}'
    delay: 10s
EOF
my $m = $mock->port;

my $admin = empty_port();
my $gw = spawn_conflux(<<"EOF");
admin: 127.0.0.1:$admin
limits:
  max_request_body: 1KiB
  max_inflight: 5
backends:
  svc:
    url: http://127.0.0.1:$m
routes:
  - path: /u/{id}
    calls:
      - { name: user, backend: svc, path: "/users/{id}" }
  - path: /s
    calls:
      - { name: search, backend: svc, path: "/search?q={query.q}&h={header.x-h}" }
  - path: /f/{rest*}
    calls:
      - { name: file, backend: svc, path: "/files/{rest}" }
  - path: /p/{rest*}
    methods: [POST]
    proxy: svc
  - path: /slow
    calls:
      - { name: slow, backend: svc, path: /slow }
EOF

# one request on a new connection; the answer's raw bytes
sub raw { (raw_exchange($gw->port, $_[0]))[0] }

# the last request the upstream saw whose path starts with $prefix
sub last_upstream {
    my ($prefix) = @_;
    my @e = grep { index($_->{path}, $prefix) == 0 } @{ $mock->journal };
    return $e[-1];
}

subtest 'path parameter values cannot change the upstream path' => sub {
    # undef: refused with 400 (a decoded NUL, a whole segment that decodes to a dot segment, or a value that decodes
    # to hold a '/': see t/80-path-values.t)
    my %cases = ('..%2Fadmin' => undef, '%2e%2e' => undef, '.' => undef, 'a%3Fx%3D1' => '/users/a%3Fx%3D1',
                 'a%23frag' => '/users/a%23frag', 'a%0D%0AX-Injected:%201' => '/users/a%0D%0AX-Injected%3A%201',
                 'a&b=1' => '/users/a%26b%3D1', 'a%20b' => '/users/a%20b', '%00' => undef);
    for my $in (sort keys %cases) {
        $mock->reset;
        my $resp = raw("GET /u/$in HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        if (!defined $cases{$in}) {
            like $resp, qr{^HTTP/1\.1 400 }, "$in: refused with 400";
            next;
        }
        like $resp, qr{^HTTP/1\.1 200 }, "$in: 200";
        my $e = last_upstream('/users/');
        is $e->{path}, $cases{$in}, "$in: upstream path $cases{$in}";
        is $e->{query}, undef, "$in: no query appeared";
    }
};

subtest 'query and header values cannot add query parameters' => sub {
    $mock->reset;
    my $r = http_get($gw->url('/s?q=a%26admin%3D1%23x'), { 'X-H' => 'v&w=1' });
    is $r->{status}, 200, 'status 200';
    my $e = last_upstream('/search');
    is $e->{query}, 'q=a%26admin%3D1%23x&h=v%26w%3D1', 'values encoded as single query values';
};

subtest 'rest parameters keep their slashes but refuse dot segments' => sub {
    $mock->reset;
    like raw("GET /f/a/b%20c/d HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"), qr{^HTTP/1\.1 200 }, 'plain rest: 200';
    is last_upstream('/files/')->{path}, '/files/a/b%20c/d', 'slashes kept, each segment encoded';
    for my $bad ('/f/a/../b', '/f/..', '/f/a/%2E%2E/b', '/f/./a', '/f/a%2Fb') {
        like raw("GET $bad HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"), qr{^HTTP/1\.1 400 }, "$bad: 400";
    }
};

# Each is refused before routing (docs/http.md, "Strict HTTP/1 framing"): its status and JSON error, the connection
# closed, nothing sent upstream; and conflux goes on serving.
subtest 'malformed requests get a 4xx and a closed connection, never a crash' => sub {
    refused_ok($gw, $mock, 'garbage request line', "GARBAGE\r\n\r\n", 400, qr/^malformed method$/);
    refused_ok($gw, $mock, 'header without colon', "GET /u/1 HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n", 400,
               qr/^whitespace between a header field name and its colon$/);
    my $huge = 'x' x 100_000;
    refused_ok($gw, $mock, 'oversized header', "GET /u/1 HTTP/1.1\r\nHost: x\r\nX-Big: $huge\r\n\r\n", 431,
               qr/^request head too large$/);
    my $many = join '', map { "X-H$_: " . ('v' x 1000) . "\r\n" } 1 .. 80;
    refused_ok($gw, $mock, 'oversized header block', "GET /u/1 HTTP/1.1\r\nHost: x\r\n$many\r\n", 431,
               qr/^request header fields too large$/);
    refused_ok($gw, $mock, 'control byte in the path', "GET /u/\x01 HTTP/1.1\r\nHost: x\r\n\r\n", 400,
               qr/^malformed request target \(a control byte\)$/);
    is http_get($gw->url('/u/1'))->{status}, 200, 'conflux still serves';
};

# /p/x is proxied to the mock's POST /x: a body over the limit never reaches it, one under it arrives whole
subtest 'request bodies over max_request_body get 413' => sub {
    $mock->reset;
    my $before = metric($admin, 'conflux_http1_refused_total{reason="body_too_large"}');
    my $r = http_request('POST', $gw->url('/p/x'), { 'Content-Type' => 'text/plain' }, 'y' x 2048);
    is $r->{status}, 413, 'status 413';
    is decode_json_ok($r->{body})->{error}, 'too_large', 'a JSON error, like conflux\'s others';
    is scalar @{ $mock->journal }, 0, 'nothing reached the upstream';
    is metric($admin, 'conflux_http1_refused_total{reason="body_too_large"}') - $before, 1, 'counted in /metrics';
    $r = http_request('POST', $gw->url('/p/x'), { 'Content-Type' => 'text/plain' }, 'y' x 1000);
    is $r->{status}, 200, 'a body under the limit (1000 bytes of 1 KiB) passes: 200';
    is $r->{body}, '{"posted": true}', 'with the upstream\'s answer';
    my $j = $mock->journal;
    is scalar @$j, 1, 'one upstream request';
    is $j->[0]{body_size}, 1000, 'the whole body went upstream';
    is $j->[0]{body}, 'y' x 1000, 'as sent';
};
refused_ok($gw, $mock, 'a Content-Length over max_request_body with Expect: 100-continue gets 413, no 100',
           "POST /p/x HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\nExpect: 100-continue\r\n\r\n", 413,
           qr/^request body too large$/);
refused_ok($gw, $mock, 'chunks adding up to more than max_request_body get 413',
           "POST /p/x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n200\r\n" . ('y' x 512)
           . "\r\n200\r\n" . ('y' x 512) . "\r\n1\r\ny\r\n0\r\n\r\n", 413, qr/^request body too large$/);

subtest 'slow clients do not hold up others' => sub {
    my @slow;
    for (1 .. 20) {
        my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $gw->port) or die $!;
        print $s "GET /u/1 HTTP/1.1\r\nHost: x\r\n";    # and never finish the head
        push @slow, $s;
    }
    my $r = http_get($gw->url('/u/2'));
    is $r->{status}, 200, 'a normal request is served';
    cmp_ok $r->{elapsed}, '<', 0.5, 'promptly';
};

# /slow answers after 10 s: the slots come back because the clients left, not because their requests finished
subtest 'over max_inflight: 503 with Retry-After' => sub {
    $mock->reset;
    my @bg;
    for (1 .. 5) {
        my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $gw->port) or die $!;
        print $s "GET /slow HTTP/1.1\r\nHost: x\r\n\r\n";
        push @bg, $s;
    }
    ok(wait_until(sub { @{ $mock->journal('/slow') } == 5 }, 5), 'five requests in flight (their calls reached the upstream)');
    my $r = http_get($gw->url('/u/3'));
    is $r->{status}, 503, '503 when 5 requests are in flight';
    is $r->{headers}{'retry-after'}, '1', 'Retry-After';
    is decode_json_ok($r->{body})->{error}, 'overloaded', 'JSON error';
    close $_ for @bg;
    ok(wait_until(sub { http_get($gw->url('/u/4'))->{status} == 200 }, 5), 'served again once they are gone');
    ok(wait_until(sub { !grep { !$_->{aborted} } @{ $mock->journal('/slow') } }, 5), 'and their upstream calls were cancelled');
};

done_testing;
