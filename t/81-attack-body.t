# Hostile-client / hostile-config review of method:/body:, default:, the HTTP/1 413 and proxy forwarding headers.
# Every subtest is an attack: those under "findings" were holes when this file was written (fixed since, or a TODO
# that says why not yet); the others held up from the start.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use CfTest;
use JSON::PP ();
use Test::More;

my $mock = spawn_mock(<<'EOF');
stubs:
  - path: /sink
    method: '*'
    body: '{"ok": true}'
  - path: /px/{rest*}
    method: '*'
    body: '{"ok": true}'
EOF
my $mp = $mock->port;

my $gw = spawn_conflux(<<"EOF");
threads: 1
limits: { max_request_body: 1024 }
backends:
  m: { url: "http://127.0.0.1:$mp" }
routes:
  - path: /raw
    methods: [POST]
    calls:
      - { name: send, backend: m, method: POST, path: /sink, body: "{request.body}" }
  - path: /tpl/{id}
    methods: [POST]
    forward_headers: [X-H, Content-Type]
    calls:
      - name: send
        backend: m
        method: POST
        path: /sink
        body: { id: "{id}", h: "{header.x-h}", note: "id={id};h={header.x-h}", q: "{query.q}" }
  - path: /px/{rest*}
    methods: [GET, POST]
    proxy: m
EOF
my $port = $gw->port;

sub last_sink { my $j = $mock->journal('/sink'); return $j->[-1] }

sub post_raw {
    my ($path, $body, %o) = @_;
    my $head = "POST $path HTTP/1.1\r\nHost: t\r\nConnection: close\r\n";
    $head .= $o{chunked} ? "Transfer-Encoding: chunked\r\n" : "Content-Length: " . length($body) . "\r\n";
    $head .= $o{headers} // '';
    my $payload = $o{chunked} ? sprintf("%x\r\n%s\r\n0\r\n\r\n", length $body, $body) : $body;
    return raw_request($port, "$head\r\n$payload");
}

# --- held up: regressions --------------------------------------------------------------------------------------------

subtest 'client values cannot add JSON structure to a template body' => sub {
    $mock->reset;
    my $r = http_request('POST', $gw->url('/tpl/a%22%5C%ff?q=%00%ed%a0%80%22%7D'), { 'X-H' => '","evil":1,"x":"' });
    is $r->{status}, 200, 'answered';
    my $req = last_sink();
    my $doc = decode_json_ok($req->{body}, 'the upstream body is JSON');
    is_deeply [sort keys %$doc], [qw(h id note q)], 'no member was added';
    is $doc->{h}, '","evil":1,"x":"', 'a hostile header is one string';
    is $req->{headers}{'content-type'}, 'application/json', "the client's Content-Type is replaced";
    ok !exists $req->{headers}{'transfer-encoding'}, 'no Transfer-Encoding upstream';
};

subtest 'the JSON check of {request.body} is strict and bounded (nothing sent on refusal)' => sub {
    for my $case (['NaN', '{"a":NaN}'], ['trailing garbage', '{"a":1}x'], ['two documents', '{"a":1} {"b":2}'],
                  ['a BOM', "\xef\xbb\xbf{}"], ['a lone surrogate', '"\ud800"'], ['invalid UTF-8', "\"\xff\""],
                  ['CESU-8 surrogate', "\"\xed\xa0\x80\""], ['whitespace only', '   '], ['a comment', '{}//']) {
        my ($name, $body) = @$case;
        $mock->reset;
        my $r = post_raw('/raw', $body);
        is $r->{status}, 400, "$name: 400";
        is scalar @{ $mock->journal('/sink') }, 0, "$name: nothing sent";
    }
    $mock->reset;
    my $r = post_raw('/raw', '{"a":"\u0000","b":"\ud83d\ude00"}');
    is $r->{status}, 200, 'an escaped NUL and a surrogate pair are JSON';
    is last_sink()->{body}, '{"a":"\u0000","b":"\ud83d\ude00"}', 'sent byte for byte';
};

subtest 'a Content-Length body at the limit passes, one byte over gets the JSON 413' => sub {
    my $at = '"' . ('a' x 1022) . '"';
    is post_raw('/raw', $at)->{status}, 200, '1024 bytes: 200';
    my $r = post_raw('/raw', $at . ' ');
    is $r->{status}, 413, '1025 bytes: 413';
    like $r->{headers}{'content-type'} // '', qr{application/json}, 'as JSON';
};

# --- findings ---------------------------------------------------------------------------------------------------------

subtest 'a chunked body of exactly max_request_body is accepted like a Content-Length one' => sub {
    # libh2o 2.2.5 refuses a chunked entity when decoded size >= max_request_entity_size (conn.c sets it to
    # max_request_body), the guard when > max_body: the guard passes it, libh2o answers its own text/plain 413,
    # neither counted nor logged as the guard's.
    $mock->reset;
    my $at = '"' . ('a' x 1022) . '"';
    my $r = post_raw('/raw', $at, chunked => 1);
    is $r->{status}, 200, '1024 bytes chunked: 200, as with Content-Length' or diag $r->{raw};
    unlike $r->{headers}{'content-type'} // '', qr{text/plain}, "not libh2o's plain-text 413";
    my $over = post_raw('/raw', $at . ' ', chunked => 1);
    is $over->{status}, 413, '1025 bytes chunked: 413';
    like $over->{headers}{'content-type'} // '', qr{application/json}, 'the JSON one';
};

subtest 'chunk extensions are bounded per body, not only per chunk' => sub {
    # 2000 one-byte chunks, each with a 4000-byte extension: 8 MB on the wire for a 2001-byte body... here kept under
    # the 1024-byte body limit: 1000 chunks of one space, then "1". Node.js bounds the extensions of a whole body
    # (CVE-2024-22019); the guard bounds each extension to 4096 bytes and counts only chunk data against the limit.
    $mock->reset;
    my $ext = ';x=' . ('a' x 4000);
    my $bytes = "POST /raw HTTP/1.1\r\nHost: t\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n"
        . ("1$ext\r\n \r\n" x 1000) . "1\r\n1\r\n0\r\n\r\n";
    my $r = raw_request($port, $bytes);
    cmp_ok length($bytes), '>', 4_000_000, 'over 4 MB sent for a 1001-byte body';
    is $r->{status}, 400, 'refused: the extensions of one body exceed any sane bound' or diag substr($r->{raw}, 0, 200);
};

subtest 'any JSON value is forwarded (docs: "any JSON value"), not only what jansson can hold' => sub {
    for my $body ('{"id":123456789012345678901234567890}', '[1e400]', '{"\u0000":1}') {
        $mock->reset;
        my $r = post_raw('/raw', $body);
        is $r->{status}, 200, "$body is RFC 8259 JSON: forwarded" or diag $r->{body};
    }
};

subtest 'YAML tags and merge keys in body: are refused, not dropped' => sub {
    my $head = "listen: [{port: 1}]\nbackends:\n  m: { url: \"http://127.0.0.1:$mp\" }\nroutes:\n  - path: /tags\n"
        . "    methods: [POST]\n    calls:\n      - { name: send, backend: m, method: POST, path: /sink, body: ";
    for my $c (['{ s: !!int "12" }', qr/the YAML tag tag:yaml\.org,2002:int is not read here/],
               ['{ m: { <<: { a: 1 }, b: 2 } }', qr/YAML merge keys \(<<\) are not read here/]) {
        my $file = write_file(tmpdir() . '/tags.yaml', $head . $c->[0] . " }\n");
        my $r = run_cmd([bindir() . '/conflux', '-t', '-c', $file]);
        is $r->{code}, 1, "$c->[0]: refused";
        like $r->{err}, $c->[1], 'says why' or diag $r->{err};
    }
};

subtest 'proxy routes do not pass on forwarding claims of the client beside their own' => sub {
    $mock->reset;
    my $r = raw_request($port, "GET /px/sink HTTP/1.1\r\nHost: good.example\r\nConnection: close\r\n"
        . "X-Forwarded-Proto: https\r\nForwarded: for=1.2.3.4;host=evil.example;proto=https\r\n\r\n");
    is $r->{status}, 200, 'answered';
    my $h = (last_sink() // {})->{headers} // {};
    ok !defined $h->{'x-forwarded-proto'} || $h->{'x-forwarded-proto'} eq 'http',
        'X-Forwarded-Proto: https from a plain-HTTP client is not believed (dropped or set to http)'
        or diag "x-forwarded-proto: $h->{'x-forwarded-proto'}";
    unlike $h->{forwarded} // '', qr/evil\.example/, "the client's Forwarded host= does not reach the upstream"
        or diag "forwarded: $h->{forwarded}";
    {
        $mock->reset;
        my $r2 = raw_request($port, "GET /px/sink HTTP/1.1\r\nHost: good.example\r\nConnection: close\r\n"
            . "x_forwarded_host: evil.example\r\n\r\n");
        my $h2 = (last_sink() // {})->{headers} // {};
        ok !defined $h2->{x_forwarded_host}, 'an underscore spelling of X-Forwarded-Host is dropped too';
    }
};

subtest 'a valid request pipelined in the same read before an over-limit one is answered first' => sub {
    local $TODO = 'the framing guard refuses the whole read: the request before the refused one is not run (docs/http.md, "Strict HTTP/1 framing")';
    # Both heads arrive in one segment: the guard refuses the stream at the second head and answers only the 413,
    # so the first request never runs and the client, matching answers in order (RFC 9112 9.3.2), takes the 413 for
    # its first (7-byte) request. When the first request reached libh2o in an earlier read, its answer does come
    # first (that held up).
    $mock->reset;
    my $r = raw_request($port, "POST /raw HTTP/1.1\r\nHost: t\r\nContent-Length: 7\r\n\r\n{\"a\":1}"
        . "POST /raw HTTP/1.1\r\nHost: t\r\nContent-Length: 99999999\r\n\r\n");
    is $r->{status}, 200, 'the first answer is the first request\'s' or diag $r->{raw};
    like $r->{raw}, qr/413/, 'then the 413';
};

done_testing;
