# Per-call method: and body: (docs/http.md, "Methods and bodies"): what the upstream receives, the client's body,
# what is never retried or hedged, and what -t refuses.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use CfTest;
use IO::Socket::INET;
use JSON::PP ();
use Test::More;

my $mock = spawn_mock(<<'EOF');
stubs:
  - path: /profile
    body: '{"friend_ids": [1, 2, 3], "score": 0.92, "big": 3.0, "name": "Zo\u00eb \"q\"", "flag": true, "nested": {"a": [1.5, null]}, "none": null}'
  - path: /sink
    method: '*'
    body: '{"ok": true}'
  - path: /flaky
    method: '*'
    body: '{"ok": true}'
    sequence: [503, 200]
  - path: /slow
    method: '*'
    body: '{"ok": true}'
    delay: 300ms
EOF
my $mp = $mock->port;

# A bare upstream that keeps the raw bytes of the one request it gets: the request head as sent on the wire.
my $raw_listener = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0, Listen => 5, ReuseAddr => 1)
    or die "listen: $!";
my $rp = $raw_listener->sockport;

my $gw_yaml = <<"EOF";
threads: 1
backends:
  m: { url: "http://127.0.0.1:$mp" }
  retrying: { url: "http://127.0.0.1:$mp", retries: 1 }
  hedging: { url: "http://127.0.0.1:$mp", hedge_after: 50ms }
  raw: { url: "http://127.0.0.1:$rp", timeout: 5s }
routes:
  - path: /types/{id}
    methods: [POST]
    forward_headers: [X-H]
    calls:
      - { name: p, backend: m, path: /profile }
      - name: send
        backend: m
        method: POST
        path: /sink
        body:
          ids: "{p.friend_ids}"
          score: "{p.score}"
          real: "{p.big}"
          name: "{p.name}"
          flag: "{p.flag}"
          nested: "{p.nested}"
          id: "{id}"
          q: "{query.q}"
          h: "{header.x-h}"
          note: "user {id}: {p.name} scored {p.score}, q={query.q}"
          lit: { n: 42, s: "42", f: 1.5, t: true, z: null, l: [1, "two", { three: 3 }], "{id}": "{{id}}" }
  - path: /missing
    methods: [POST]
    calls:
      - { name: send, backend: m, method: POST, path: /sink, body: { q: "{query.q}" } }
      - { name: nulled, backend: m, method: POST, path: /sink, body: { n: "{p.none}" } }
      - { name: p, backend: m, path: /profile }
  - path: /fwd
    methods: [POST, PUT]
    calls:
      - { name: send, backend: m, method: PUT, path: /sink, body: "{request.body}" }
  - path: /wrap/{id}
    methods: [POST]
    calls:
      - { name: send, backend: m, method: PATCH, path: /sink, body: { by: "{id}", data: "{request.body}" } }
  - path: /get
    calls:
      - { name: g, backend: m, path: /sink }
  - path: /retry/post
    methods: [POST]
    calls: [{ name: c, backend: retrying, method: POST, path: /flaky, body: { a: 1 } }]
  - path: /retry/put
    methods: [PUT]
    calls: [{ name: c, backend: retrying, method: PUT, path: /flaky, body: { a: 1 } }]
  - path: /hedge/post
    methods: [POST]
    calls: [{ name: c, backend: hedging, method: POST, path: /slow, body: { a: 1 } }]
  - path: /hedge/get
    calls: [{ name: c, backend: hedging, path: /slow }]
  - path: /hedge/put
    methods: [PUT]
    calls: [{ name: c, backend: hedging, method: PUT, path: /slow, body: { a: 1 } }]
  - path: /raw
    calls: [{ name: c, backend: raw, method: POST, safe: true, path: /in, body: { a: "{query.a}", n: 1 } }]
EOF
my $gw = spawn_conflux($gw_yaml);

sub journal_of { my ($path) = @_; return $mock->journal($path) }

subtest 'values go in with their JSON type; literals keep their YAML type' => sub {
    $mock->reset;
    my $r = http_request('POST', $gw->url('/types/4%22x?q=v'), { 'X-H' => 'hv' });
    is $r->{status}, 200, 'answered';
    my $j = journal_of('/sink');
    is scalar @$j, 1, 'one upstream request';
    is $j->[0]{method}, 'POST', 'sent as POST';
    my $text = $j->[0]{body};
    my $doc = decode_json_ok($text, 'the upstream body is JSON');
    is_deeply $doc->{ids}, [1, 2, 3], 'an array stays an array';
    like $text, qr/"score":0\.92[,}]/, 'a real in its shortest form';
    like $text, qr/"real":3\.0[,}]/, 'an integral real stays a real';
    is $doc->{name}, "Zo\xc3\xab \"q\"", 'a string stays a string (UTF-8 bytes here)';
    like $text, qr/"flag":true[,}]/, 'a boolean stays a boolean';
    is_deeply $doc->{nested}, { a => [1.5, undef] }, 'an object stays an object';
    is $doc->{id}, '4"x', 'a route parameter is a string';
    is $doc->{q}, 'v', 'a query parameter is a string';
    is $doc->{h}, 'hv', 'a header is a string';
    is $doc->{note}, "user 4\"x: Zo\xc3\xab \"q\" scored 0.92, q=v", 'values interpolated in a longer string';
    like $text, qr/"lit":\{"n":42,"s":"42","f":1\.5,"t":true,"z":null,"l":\[1,"two",\{"three":3\}\],"\{id\}":"\{id\}"\}/,
        'YAML scalars keep their type, quoted ones are strings; keys are literal; {{ }} are braces';
};

subtest 'hostile values are escaped: the upstream body is always valid JSON' => sub {
    $mock->reset;
    # a quote, a backslash, CR LF, a control byte, a tab, unicode, and a byte that is not UTF-8
    my $r = http_request('POST', $gw->url('/types/1?q=a%22b%5Cc%0D%0A%01%09%E2%9C%93%FF%22%7D'), { 'X-H' => 'h' });
    is $r->{status}, 200, 'answered';
    my $j = journal_of('/sink');
    my $doc = decode_json_ok($j->[0]{body}, 'the upstream body is JSON');
    is $doc->{q}, "a\"b\\c\r\n\x01\t\xe2\x9c\x93\x{fffd}\"}", 'the value, whole: escaped, ill-formed UTF-8 replaced (\\ufffd; UTF-8 as bytes here)';
    is $doc->{note}, "user 1: Zo\xc3\xab \"q\" scored 0.92, q=a\"b\\c\r\n\x01\t\xe2\x9c\x93\x{fffd}\"}", 'the value, interpolated';
    is_deeply [sort keys %$doc], [sort qw(ids score real name flag nested id q h note lit)], 'no member was added';
};

subtest 'Content-Type: application/json and a correct Content-Length, on the wire' => sub {
    my $h = background(sub {
        my $c = $raw_listener->accept or return { error => "accept: $!" };
        my $buf = '';
        while ($buf !~ /\r\n\r\n/) { my $n = sysread($c, $buf, 65536, length $buf); return { error => 'eof' } unless $n }
        my ($head, $body) = split /\r\n\r\n/, $buf, 2;
        my ($len) = $head =~ /^content-length:\s*(\d+)\r?$/mi;
        while (defined $len && length($body) < $len) { my $n = sysread($c, $body, 65536, length $body); last unless $n }
        print $c "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 11\r\nConnection: close\r\n\r\n{\"ok\":true}";
        close $c;
        return { head => $head, body => $body };
    });
    my $r = http_get($gw->url('/raw?a=%C3%A9%22'));
    is $r->{status}, 200, 'answered';
    my $got = $h->wait;
    my $head = $got->{head} // diag($got->{error}) // '';
    like $head, qr{^POST /in HTTP/1\.1\r\n}, 'the request line';
    my @ct = $head =~ /^content-type:\s*(.*?)\r?$/mig;
    is_deeply \@ct, ['application/json'], 'one Content-Type: application/json';
    my ($cl) = $head =~ /^content-length:\s*(\d+)\r?$/mi;
    is $got->{body}, "{\"a\":\"\xc3\xa9\\\"\",\"n\":1}", 'the body';
    is $cl, length($got->{body}), 'Content-Length is the body\'s length';
    unlike $head, qr/^transfer-encoding:/mi, 'not chunked';
};

subtest '{request.body} alone: the client\'s bytes, as they came' => sub {
    $mock->reset;
    my $body = qq({ "a" :\t[1, 2.50, 1e2, "\\u00e9\\ud83d\\ude00"],\n  "b":null ,"c":{}}  );
    my $r = http_request('POST', $gw->url('/fwd'), { 'Content-Type' => 'text/plain' }, $body);
    is $r->{status}, 200, 'answered';
    my $j = journal_of('/sink');
    is scalar @$j, 1, 'one upstream request';
    is $j->[0]{method}, 'PUT', 'the call\'s method';
    is $j->[0]{body}, $body, 'byte for byte: spaces, 2.50, 1e2 and escapes untouched';
    is $j->[0]{body_size}, length($body), 'nothing more';
    is $j->[0]{headers}{'content-type'}, 'application/json', 'Content-Type is conflux\'s';
};

subtest '{request.body} inside a body' => sub {
    $mock->reset;
    my $r = http_request('POST', $gw->url('/wrap/7'), {}, '[1, {"x": "y"}]');
    is $r->{status}, 200, 'answered';
    my $j = journal_of('/sink');
    is $j->[0]{method}, 'PATCH', 'the call\'s method';
    is $j->[0]{body}, '{"by":"7","data":[1, {"x": "y"}]}', 'the client\'s JSON in its place, as it came';
};

# After a refusal, a request that does reach the upstream: once it is in the journal, anything the refused one had
# sent would be there too (one connection per backend and thread, in order).
sub nothing_else_reached {
    my ($what) = @_;
    my $r = http_get($gw->url('/get'));
    is $r->{status}, 200, 'a later request goes through';
    my $j = $mock->journal;
    is_deeply [map { "$_->{method} $_->{path}" } @$j], ['GET /sink'], "$what: nothing else reached the upstream";
}

subtest 'a client body that is not JSON, or none: 400 before any call' => sub {
    for my $case (['not JSON', 'nope', qr/not JSON/], ['truncated JSON', '{"a": [1, 2', qr/not JSON/],
                  ['no body', undef, qr/has none/], ['an empty body', '', qr/has none/]) {
        my ($name, $body, $why) = @$case;
        $mock->reset;
        my $r = http_request('POST', $gw->url('/fwd'), { 'Content-Type' => 'application/json' }, $body);
        is $r->{status}, 400, "$name: 400";
        my $doc = decode_json_ok($r->{body});
        is $doc->{error}, 'bad_request', "$name: bad_request";
        like $doc->{message}, $why, "$name: says why";
        nothing_else_reached($name);
    }
};

subtest 'an unsafe method to a route that does not list it: 405, no upstream request' => sub {
    for my $m (qw(POST PUT DELETE PATCH)) {
        $mock->reset;
        my $r = http_request($m, $gw->url('/get'), { 'Content-Type' => 'application/json' }, '{"a": 1}');
        is $r->{status}, 405, "$m: 405";
        is $r->{headers}{allow}, 'GET, HEAD', "$m: Allow";
        nothing_else_reached($m);
    }
};

subtest 'a missing value fails the call with missing_param, and sends nothing' => sub {
    $mock->reset;
    my $r = http_request('POST', $gw->url('/missing'));
    is $r->{status}, 200, 'the calls are optional';
    my $doc = decode_json_ok($r->{body});
    is $doc->{send}, undef, 'an absent query parameter';
    is $doc->{nulled}, undef, 'a null field';
    like $r->{headers}{'server-timing'}, qr/^send;dur=[0-9.]+;desc="missing_param"/, 'send: missing_param';
    like $r->{headers}{'server-timing'}, qr/nulled;dur=[0-9.]+;desc="missing_param"/, 'nulled: missing_param';
    is scalar @{ journal_of('/sink') }, 0, 'neither was sent';
};

subtest 'POST is never retried; PUT is' => sub {
    $mock->reset;
    my $r = http_request('POST', $gw->url('/retry/post'));
    like $r->{headers}{'server-timing'}, qr/^c;dur=[0-9.]+;desc="status_503",/, 'the POST failed with the 503';
    is scalar @{ journal_of('/flaky') }, 1, 'one upstream request';
    $mock->reset;
    $r = http_request('PUT', $gw->url('/retry/put'));
    like $r->{headers}{'server-timing'}, qr/^c;dur=[0-9.]+;desc="ok";attempts=2,/, 'the PUT was retried';
    my $j = journal_of('/flaky');
    is scalar @$j, 2, 'two upstream requests';
    is $j->[1]{body}, '{"a":1}', 'the retry carries the body';
};

subtest 'POST and PUT are never hedged; GET is' => sub {
    $mock->reset;
    my $r = http_request('POST', $gw->url('/hedge/post'));
    like $r->{headers}{'server-timing'}, qr/^c;dur=[0-9.]+;desc="ok",/, 'the POST answered, without a copy';
    is scalar @{ journal_of('/slow') }, 1, 'one upstream request';
    $mock->reset;
    $r = http_request('PUT', $gw->url('/hedge/put'));
    like $r->{headers}{'server-timing'}, qr/^c;dur=[0-9.]+;desc="ok",/, 'the PUT answered, without a copy (two PUTs in flight could land in either order)';
    is scalar @{ journal_of('/slow') }, 1, 'one upstream request';
    $mock->reset;
    $r = http_get($gw->url('/hedge/get'));
    like $r->{headers}{'server-timing'}, qr/^c;dur=[0-9.]+;desc="ok";attempts=2;hedged/, 'the GET was hedged';
    ok wait_until(sub { @{ journal_of('/slow') } == 2 }), 'two upstream requests';
};

# -t: exit 1 and "FILE:line:col: key: message" on stderr
my $conflux = bindir() . '/conflux';
my $n = 0;
sub check_config {
    my ($yaml) = @_;
    my $file = write_file(sprintf('%s/t%02d.yaml', tmpdir(), ++$n), $yaml);
    my $r = run_cmd([$conflux, '-t', '-c', $file], timeout => 10);
    return ($r->{code}, $r->{err}, $file, $r->{out});
}
my $head = "listen: [{port: 1}]\nbackends:\n  b: { url: \"http://127.0.0.1:1\" }\nroutes:\n";
for my $case (
    ['cache: on a POST call', "  - path: /x\n    calls:\n      - { name: c, backend: b, path: /c, method: POST, cache: 30s }\n",
     qr/^FILE:7:63: routes\[0\]\.calls\[0\]\.cache: only GET calls are cached; a POST call is sent every time/],
    ['a route listing POST that no call uses',
     "  - path: /x\n    methods: [GET, POST]\n    calls:\n      - { name: c, backend: b, path: /c }\n",
     qr/^FILE:6:14: routes\[0\]\.methods: POST: no call forwards the client's body \(\{request\.body\} in a body:\) or has a method: other than GET/],
    ['a route listing PUT and DELETE that no call uses',
     "  - path: /x\n    methods: [PUT, DELETE]\n    calls:\n      - { name: c, backend: b, path: /c }\n",
     qr/^FILE:6:14: routes\[0\]\.methods: PUT, DELETE: no call forwards/],
    ['a POST call on a route that answers GET',
     "  - path: /x\n    calls:\n      - { name: c, backend: b, path: /c, method: POST, body: {a: 1} }\n",
     qr/^FILE:7:50: routes\[0\]\.calls\[0\]\.method: the route answers GET, HEAD, which must change nothing, but this call sends POST upstream/],
    ['a DELETE call on a route that answers OPTIONS',
     "  - path: /x\n    methods: [OPTIONS, DELETE]\n    calls:\n      - { name: c, backend: b, path: /c, method: DELETE }\n",
     qr/^FILE:8:50: routes\[0\]\.calls\[0\]\.method: the route answers OPTIONS, which must change nothing, but this call sends DELETE upstream/],
    ['safe: on a GET call', "  - path: /x\n    calls:\n      - { name: c, backend: b, path: /c, safe: true }\n",
     qr/^FILE:7:48: routes\[0\]\.calls\[0\]\.safe: safe: is for a call whose method is not GET/],
    ['a body on a GET call', "  - path: /x\n    calls:\n      - { name: c, backend: b, path: /c, body: {a: 1} }\n",
     qr/^FILE:7:48: routes\[0\]\.calls\[0\]\.body: a GET call sends no body/],
    ['{request.body} on a route that takes only GET and HEAD',
     "  - path: /x\n    calls:\n      - name: c\n        backend: b\n        path: /c\n        method: POST\n        body: \"{request.body}\"\n",
     qr/^FILE:11:15: routes\[0\]\.calls\[0\]\.body: \{request\.body\} forwards the client's body, but the route takes only GET, HEAD/],
    ['an unknown name in a body',
     "  - path: /x/{id}\n    calls:\n      - name: c\n        backend: b\n        path: /c\n        method: POST\n        body: { a: \"{idd}\" }\n",
     qr/^FILE:11:15: routes\[0\]\.calls\[0\]\.body: unknown route parameter \{idd\} \(the route has id\)/],
    ) {
    my ($name, $routes, $want) = @$case;
    subtest "-t refuses $name" => sub {
        my ($code, $err, $file) = check_config($head . $routes);
        is $code, 1, 'exit 1';
        $err =~ s/^\Q$file\E/FILE/;
        like $err, $want, 'file:line:col and the message';
    };
}

subtest 'proxy routes may list any method; --explain shows a call\'s method and body' => sub {
    my ($code, $err, $file) = check_config($head . "  - path: /p/{rest*}\n    methods: [POST, PUT, DELETE]\n    proxy: b\n");
    is $code, 0, 'a proxy route listing POST is fine' or diag $err;
    my $r = run_cmd([$conflux, '--explain', '-c', $gw->{config}], timeout => 10);
    is $r->{code}, 0, '--explain runs';
    like $r->{out}, qr/^\s+method POST \(not idempotent: never retried nor hedged\); sends a JSON body \(Content-Type: application\/json\) from a template with 13 values$/m,
        'the template call';
    like $r->{out}, qr/^\s+method PUT; sends a JSON body \(Content-Type: application\/json\): the client's body, as it came$/m,
        'the forwarding call';
};

done_testing;
