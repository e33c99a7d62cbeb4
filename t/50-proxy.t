# Proxy routes: status, headers and body pass through; hop-by-hop headers go; Via and Forwarded are added.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use CfTest;
use Test::More;

my $mock = spawn_mock(<<'EOF');
stubs:
  - path: /items/{id}
    method: "*"
    status: 201
    headers: { Content-Type: text/plain, X-Custom: yes, Keep-Alive: timeout=5, Upgrade: h2c, Proxy-Authenticate: Basic }
    body: 'item {id}'
  - path: /slow
    body: 'slow'
    delay: 2s
EOF
my $m = $mock->port;

my $gw = spawn_conflux(<<"EOF");
backends:
  legacy:
    url: http://127.0.0.1:$m
    timeout: 500ms
  down:
    url: http://127.0.0.1:1
  patient:
    url: http://127.0.0.1:$m
    timeout: 5s
routes:
  - path: /quick/{rest*}
    proxy: patient
    deadline: 300ms
  - path: /legacy/{rest*}
    methods: [GET, HEAD, POST, PUT, DELETE]
    proxy: legacy
  - path: /gone/{rest*}
    proxy: down
EOF

subtest 'status, headers and body pass through' => sub {
    my $r = http_get($gw->url('/legacy/items/7?x=1&y=%2F'));
    is $r->{status}, 201, 'upstream status';
    is $r->{body}, 'item 7', 'upstream body';
    is $r->{headers}{'content-type'}, 'text/plain', 'upstream Content-Type';
    is $r->{headers}{'x-custom'}, 'yes', 'end-to-end header kept';
    ok !exists $r->{headers}{'keep-alive'}, 'Keep-Alive is removed';
    ok !exists $r->{headers}{upgrade}, 'Upgrade is removed';
    ok !exists $r->{headers}{'proxy-authenticate'}, 'Proxy-Authenticate is removed';
    like $r->{headers}{via}, qr/1\.1 conflux/, 'Via added to the answer';
    my $e = $mock->journal('/items/7')->[-1];
    is $e->{query}, 'x=1&y=%2F', 'query passed as sent';
    like $e->{headers}{via}, qr/1\.1 conflux/, 'Via added upstream';
    is $e->{headers}{'x-forwarded-for'}, '127.0.0.1', 'X-Forwarded-For added upstream';
    like $e->{headers}{forwarded}, qr/^for=127\.0\.0\.1;proto=http;host="127\.0\.0\.1:\d+"$/, 'Forwarded added upstream';
};

subtest 'client hop-by-hop headers do not go upstream; X-Forwarded-For is appended to' => sub {
    $mock->reset;
    # raw: HTTP::Tiny writes a Connection header of its own
    my ($resp) = raw_exchange($gw->port, "GET /legacy/items/8 HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: 10.1.2.3\r\n"
        . "Connection: close, X-Secret\r\nX-Secret: s\r\nX-Keep: k\r\nTE: trailers\r\n\r\n");
    like $resp, qr{^HTTP/1\.1 201 }, 'status';
    my $e = $mock->journal('/items/8')->[-1];
    is $e->{headers}{'x-forwarded-for'}, '10.1.2.3, 127.0.0.1', 'appended';
    ok !exists $e->{headers}{'x-secret'}, 'header named by Connection dropped';
    ok !exists $e->{headers}{te}, 'TE dropped';
    is $e->{headers}{'x-keep'}, 'k', 'other headers kept';
};

subtest 'a client\'s X-Forwarded-Host is replaced, not passed on beside conflux\'s' => sub {
    $mock->reset;
    my ($resp) = raw_exchange($gw->port, "GET /legacy/items/9 HTTP/1.1\r\nHost: shop.example\r\n"
        . "X-Forwarded-Host: evil.example\r\nConnection: close\r\n\r\n");
    like $resp, qr{^HTTP/1\.1 201 }, 'status';
    my $e = $mock->journal('/items/9')->[-1];
    is $e->{headers}{'x-forwarded-host'}, 'shop.example', 'X-Forwarded-Host: the Host conflux received, once';
    ($resp) = raw_exchange($gw->port, "GET /legacy/items/10 HTTP/1.0\r\nX-Forwarded-Host: evil.example\r\n\r\n");
    like $resp, qr{^HTTP/1\.1 201 }, 'HTTP/1.0 without Host: status';
    $e = $mock->journal('/items/10')->[-1];
    ok !exists $e->{headers}{'x-forwarded-host'}, 'without a Host, none (the client\'s is not passed on)';
};

subtest 'request bodies are forwarded' => sub {
    $mock->reset;
    my $r = http_request('POST', $gw->url('/legacy/items/9'), { 'Content-Type' => 'application/json' }, '{"a":1}');
    is $r->{status}, 201, 'status';
    my $e = $mock->journal('/items/9')->[-1];
    is $e->{method}, 'POST', 'method kept';
    is $e->{body}, '{"a":1}', 'body forwarded';
    is $e->{headers}{'content-type'}, 'application/json', 'Content-Type forwarded';
};

subtest 'dot segments are refused' => sub {
    for my $path ('/legacy/a/../items/1', '/legacy/%2e%2e/x', '/legacy/a/./b', '/legacy/a%2Fb') {
        my ($resp) = raw_exchange($gw->port, "GET $path HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        like $resp, qr{^HTTP/1\.1 400 }, "$path: 400";
    }
};

subtest 'upstream failures become 502 / 504 in JSON' => sub {
    my $r = http_get($gw->url('/gone/x'));
    is $r->{status}, 502, 'refused: 502';
    is decode_json_ok($r->{body})->{error}, 'connect_failed', 'reason';
    $r = http_get($gw->url('/legacy/slow'));
    is $r->{status}, 504, 'timeout: 504';
    cmp_ok $r->{elapsed}, '<', 1.0, 'at the backend timeout';
};

subtest 'what a client claims about the edge is dropped: conflux is the edge' => sub {
    $mock->reset;
    my ($resp) = raw_exchange($gw->port, "GET /legacy/items/11 HTTP/1.1\r\nHost: shop.example\r\n"
        . "Forwarded: for=1.2.3.4;host=evil.example;proto=https\r\nX-Forwarded-Proto: https\r\nX-Forwarded-Port: 443\r\n"
        . "X-Real-IP: 1.2.3.4\r\nX-Forwarded-Prefix: /admin\r\nX_Forwarded_Host: evil.example\r\nX-Keep: k\r\nConnection: close\r\n\r\n");
    like $resp, qr{^HTTP/1\.1 201 }, 'status';
    my $e = $mock->journal('/items/11')->[-1];
    like $e->{headers}{forwarded}, qr/^for=127\.0\.0\.1;proto=http;host="shop\.example"$/, 'Forwarded: conflux\'s entry only';
    is $e->{headers}{'x-forwarded-proto'}, 'http', 'X-Forwarded-Proto: the scheme conflux received';
    ok !exists $e->{headers}{$_}, "$_ dropped" for qw(x-forwarded-port x-real-ip x-forwarded-prefix x_forwarded_host);
    is $e->{headers}{'x-keep'}, 'k', 'other headers kept';
};

subtest 'a proxy route\'s deadline bounds the exchange when it is shorter than the backend\'s timeout' => sub {
    my $r = http_get($gw->url('/quick/slow'));
    is $r->{status}, 504, 'cut: 504';
    cmp_ok $r->{elapsed}, '<', 1.5, sprintf('at the 300ms deadline (%.2fs), not the 2s answer or the 5s timeout', $r->{elapsed});
};

done_testing;
