# conflux-mock request matching beyond method and path: match: (query, headers, body, json), priority, near misses.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use CfTest;
use JSON::PP;
use Test::More;

my $mock = spawn_mock(<<'EOF');
stubs:
  - path: /users/{id}
    match:
      headers: { X-Tenant: a }
    body: tenant-a
  - path: /users/{id}
    match:
      headers: { x-tenant: "~^b[0-9]+$" }
    body: tenant-b
  - path: /search
    match:
      query: { q: shoes, page: { absent: true } }
    body: first-page
  - path: /search
    match:
      query: { q: { regex: "^sho" }, page: { absent: false } }
    body: some-page
  - path: /orders
    method: POST
    match:
      json: { order: { qty: 1, price: 2.5, tags: [red, blue], meta: { gift: true } } }
    body: order-json
  - path: /orders
    method: POST
    match:
      body: "~^qty=[0-9]+$"
    body: order-form
  - path: /prio
    body: default-priority
  - path: /prio
    priority: 1
    match: { query: { v: "1" } }
    body: priority-1
  - path: /prio
    priority: 1
    match: { query: { w: "1" } }
    body: priority-1-second
  - path: /prio/{x}
    priority: 7
    body: param-priority-7
  - path: /prio/lit
    priority: 9
    body: literal-priority-9
  - path: /tie/{x}
    match: { headers: { x-a: "1" } }
    body: tie-first
  - path: /tie/{x}
    match: { headers: { x-b: "1" } }
    body: tie-second
  - path: /big
    method: POST
    match:
      body: "~(a|b){1000}c"
    body: big
  - path: /named
    name: the-named-one
    match: { query: { k: v } }
    body: named
EOF

sub get { my ($path, $h) = @_; http_request('GET', $mock->url($path), $h // {}) }
sub post { my ($path, $body, $h) = @_; http_request('POST', $mock->url($path), $h // {}, $body) }
sub body_is { my ($r, $want, $name) = @_; is "$r->{status} $r->{body}", "200 $want", $name }
sub miss_ok {
    my ($r, $name) = @_;
    is $r->{status}, 404, "$name: 404";
    my $j = decode_json_ok($r->{body}, "$name: JSON body") // {};
    return $j;
}

subtest 'headers: exact (names case-insensitive), regex, miss' => sub {
    body_is get('/users/1', { 'X-Tenant' => 'a' }), 'tenant-a', 'exact value';
    body_is get('/users/1', { 'x-TENANT' => 'a' }), 'tenant-a', 'header name in any case';
    body_is get('/users/1', { 'X-Tenant' => 'b42' }), 'tenant-b', 'regex value';
    miss_ok get('/users/1', { 'X-Tenant' => 'b42x' }), 'regex is anchored by its ^ and $ only';
    miss_ok get('/users/1', { 'X-Tenant' => 'A' }), 'values are case-sensitive';
    miss_ok get('/users/1'), 'no header';
};

subtest 'query: exact, regex, absent, present' => sub {
    body_is get('/search?q=shoes'), 'first-page', 'exact, and page absent';
    body_is get('/search?q=sho%65s'), 'first-page', 'values are compared decoded';
    body_is get('/search?q=shoes&page=2'), 'some-page', 'page present: the other stub (regex + present)';
    body_is get('/search?q=shorts&page='), 'some-page', 'present with an empty value';
    miss_ok get('/search?q=shorts'), 'regex holds but page absent, and the exact one misses';
    miss_ok get('/search'), 'no query';
};

subtest 'json subset' => sub {
    my $full = '{"order":{"qty":1,"price":2.5,"tags":["red","blue"],"meta":{"gift":true,"note":"x"},"extra":1},"id":9}';
    body_is post('/orders', $full), 'order-json', 'nested subset, extra members ignored';
    body_is post('/orders', '{"order":{"qty":1.0,"price":2.50,"tags":["red","blue"],"meta":{"gift":true}}}'), 'order-json',
        'numbers compared as numbers: 1.0 is 1, 2.50 is 2.5';
    my $j = miss_ok post('/orders', '{"order":{"qty":"1","price":2.5,"tags":["red","blue"],"meta":{"gift":true}}}'),
        'a string "1" is not the number 1';
    like join(' ', @{ $j->{closest}{missed} // [] }), qr/json at \$\.order\.qty: expected 1, got "1"/, 'says where';
    $j = miss_ok post('/orders', '{"order":{"qty":1,"price":2.5,"tags":["red","blue","green"],"meta":{"gift":true}}}'),
        'arrays: a longer array misses';
    like join(' ', @{ $j->{closest}{missed} // [] }), qr/json at \$\.order\.tags: expected 2 elements, got 3/, 'says so';
    $j = miss_ok post('/orders', '{"order":{"qty":1,"price":2.5,"tags":["blue","red"],"meta":{"gift":true}}}'),
        'arrays: order counts';
    like join(' ', @{ $j->{closest}{missed} // [] }), qr/\$\.order\.tags\[0\]: expected "red", got "blue"/, 'element path';
    $j = miss_ok post('/orders', '{"order":{"qty":1,"price":2.5,"tags":["red","blue"],"meta":{}}}'), 'a missing nested member';
    like join(' ', @{ $j->{closest}{missed} // [] }), qr/\$\.order\.meta\.gift: expected true, got none/, 'says which';
    miss_ok post('/orders', '{"order":'), 'invalid JSON misses';
    miss_ok post('/orders', ('[' x 5000) . (']' x 5000)), 'deeply nested JSON body misses, no crash';
};

subtest 'body regex' => sub {
    body_is post('/orders', 'qty=3'), 'order-form', 'non-JSON body by regex';
    miss_ok post('/orders', 'qty=x'), 'regex misses';
    body_is post('/big', ('a' x 1000) . 'c'), 'big', 'a large regex on a short body';
    my $j = miss_ok post('/big', ('a' x 100_000) . 'c'), 'a large regex on a long body: not tried';
    like $j->{closest}{missed}[0], qr/^body: 100001 bytes are too many for this regex \(at most \d+ for its size\)$/,
        'says why';
};

subtest 'priority and ties' => sub {
    body_is get('/prio'), 'default-priority', 'only the default stub matches';
    body_is get('/prio?v=1'), 'priority-1', 'priority 1 beats the default 5 (listed later)';
    body_is get('/prio?v=1&w=1'), 'priority-1', 'two of priority 1: the first listed';
    body_is get('/prio?w=1'), 'priority-1-second', 'the second when the first misses';
    body_is get('/prio/lit'), 'param-priority-7', 'priority before path specificity: 7 beats a literal at 9';
    body_is get('/tie/1', { 'X-A' => 1, 'X-B' => 1 }), 'tie-first', 'same priority and path: the first listed';
    body_is get('/tie/1', { 'X-B' => 1 }), 'tie-second', 'the second when the first misses';
};

subtest 'near miss: 404 names the closest stub and why' => sub {
    my $j = miss_ok get('/users/7', { 'X-Tenant' => 'c' }), 'one header off';
    is $j->{error}, 'no stub', 'error';
    is $j->{closest}{stub}, 'GET /users/{id} [header.x-tenant=a]', 'closest: the first of equal misses';
    is_deeply $j->{closest}{missed}, ['header x-tenant: expected "a", got "c"'], 'missed: the header';

    $j = miss_ok get('/users/7'), 'header absent';
    is_deeply $j->{closest}{missed}, ['header x-tenant: expected "a", got none'], 'got none';

    $j = miss_ok post('/orders', '{"order":{"qty":2,"price":2.5,"tags":["red","blue"],"meta":{"gift":true}}}'), 'by the body';
    like $j->{closest}{stub}, qr/^POST \/orders \[json /, 'closest: the json stub';
    is_deeply $j->{closest}{missed}, ['json at $.order.qty: expected 1, got 2'], 'missed: the member';

    $j = miss_ok http_request('PUT', $mock->url('/users/7'), { 'X-Tenant' => 'a' }), 'by the method';
    is $j->{closest}{stub}, 'GET /users/{id} [header.x-tenant=a]', 'closest: same path, conditions held';
    is_deeply $j->{closest}{missed}, ['method: expected GET, got PUT'], 'missed: the method';

    $j = miss_ok get('/search?q=boots&page=1'), 'path matches, several stubs: the fewest misses';
    is $j->{closest}{stub}, 'GET /search [query.q~^sho, query.page present]', 'the one missing one condition';
    is_deeply $j->{closest}{missed}, ['query q: expected a match of ~"^sho", got "boots"'], 'regex miss message';

    $j = miss_ok get('/nowhere/at/all'), 'no path matches';
    ok $j->{closest}{stub}, 'still names a closest stub';
    like $j->{closest}{missed}[0], qr/^path: expected /, 'path missed';

    my $e = $mock->last_request;
    is $e->{stub}, undef, 'journaled unmatched';
    is $e->{closest}{stub}, $j->{closest}{stub}, 'the journal records the near miss';
    is_deeply $e->{closest}{missed}, $j->{closest}{missed}, 'with its reasons';
};

subtest 'keys: derived from conditions, or a name' => sub {
    $mock->reset;
    get('/named?k=v');
    get('/users/1', { 'X-Tenant' => 'a' });
    my $s = $mock->stats->{stubs};
    is $s->{'the-named-one'}, 1, 'a name: is the key';
    is $s->{'GET /users/{id} [header.x-tenant=a]'}, 1, 'otherwise METHOD path [conditions]';
    is $mock->last_request->{stub}, 'GET /users/{id} [header.x-tenant=a]', 'journal names it so';
};

subtest 'runtime stubs take the same conditions' => sub {
    my %stub = (path => '/rt', method => 'POST', match => { headers => { 'X-K' => '~^k' }, json => { a => [1, { b => 2 }] } },
                priority => 2);
    my $r = http_request('POST', $mock->url('/__mock/stubs'), { 'Content-Type' => 'application/json' },
        encode_json([{ %stub, body => 'rt' }]));
    is $r->{status}, 200, 'accepted' or diag $r->{body};
    body_is post('/rt', '{"a":[1.0,{"b":2,"c":3}]}', { 'X-K' => 'kk' }), 'rt', 'answers when the conditions hold';
    my $j = miss_ok post('/rt', '{"a":[1,{"b":2}]}'), 'misses without the header';
    is_deeply $j->{closest}{missed}, ['header x-k: expected a match of ~"^k", got none'], 'near miss: the header';
    $j = miss_ok get('/rt'), 'a GET without a body';
    is_deeply $j->{closest}{missed},
        ['method: expected POST, got GET', 'header x-k: expected a match of ~"^k", got none', 'json: expected a JSON body, got none'],
        'near miss lists every miss';
    # replacing: the same method, path and conditions make the same key
    $r = http_request('POST', $mock->url('/__mock/stubs'), { 'Content-Type' => 'application/json' },
        encode_json({ %stub, body => 'rt3' }));
    is decode_json($r->{body})->{replaced}, 1, 'same method, path and conditions: replaced';
    body_is post('/rt', '{"a":[1,{"b":2}]}', { 'X-K' => 'k' }), 'rt3', 'the replacement answers';
    $r = http_request('POST', $mock->url('/__mock/stubs'), { 'Content-Type' => 'application/json' },
        encode_json({ %stub, match => { headers => { 'X-K' => 'other' } }, body => 'rt4' }));
    is decode_json($r->{body})->{replaced}, 0, 'other conditions: a new stub';
    body_is post('/rt', '', { 'X-K' => 'other' }), 'rt4', 'which answers beside it';

    $r = http_request('POST', $mock->url('/__mock/stubs'), {}, "path: /bad\nmatch:\n  query: { q: \"~(\" }\n");
    is $r->{status}, 400, 'a bad regex at runtime: 400';
    like $r->{body}, qr/request:3:\d+: match\.query\.q: bad regex/, 'with line:col and key';
    $r = http_request('POST', $mock->url('/__mock/stubs'), {}, "path: /bad\nmatch:\n  json: " . ('[' x 40) . (']' x 40) . "\n");
    is $r->{status}, 400, 'json: nested too deep: 400';
    like $r->{body}, qr/nested deeper than/, 'says so';
};

subtest 'bad stub files fail at start with file:line:col' => sub {
    my $bin = bindir() . '/conflux-mock';
    my @cases = (
        ["  - path: /x\n    match:\n      query: { q: \"~a(b\" }\n", qr/:4:\d+: stubs\[0\]\.match\.query\.q: bad regex "a\(b"/],
        ["  - path: /x\n    match:\n      headers: { x: { regex: \"(((a{100}){100}){100})\" } }\n",
         qr/:4:\d+: stubs\[0\]\.match\.headers\.x\.regex: a regex over 10000 atoms once its repetitions are expanded/],
        ["  - path: /x\n    match:\n      body: '~(a+)\\1'\n", qr/:4:\d+: stubs\[0\]\.match\.body: a back-reference/],
        ["  - path: /x\n    match:\n      headers: { x: { regex: \"" . ('a' x 600) . "\" } }\n", qr/:4:\d+: .*longer than 512/],
        ["  - path: /x\n    match:\n      headers: { \"bad name\": a }\n", qr/:4:\d+: .*is not a header name/],
        ["  - path: /x\n    match:\n      cookies: { a: b }\n", qr/:4:\d+: stubs\[0\]\.match: unknown key "cookies"/],
        ["  - path: /x\n    match:\n      query: { q: { between: [1, 2] } }\n", qr/:4:\d+: .*unknown condition "between"/],
        ["  - path: /x\n    priority: -1\n", qr/:3:\d+: stubs\[0\]\.priority/],
        ["  - path: /x\n    match: { query: { q: a } }\n  - path: /x\n    match: { query: { q: a } }\n",
         qr/:4:\d+: stubs\[1\]: a second stub for GET \/x \[query\.q=a\]/],
    );
    for my $c (@cases) {
        my $file = write_file(tmpdir() . '/bad-match.yaml', "stubs:\n$c->[0]");
        my $r = run_cmd([$bin, '-c', $file, '--port', '0']);
        is $r->{code}, 1, 'exit 1 for: ' . (split /\n/, $c->[0])[-1];
        like $r->{err}, qr/\Q$file\E/, 'names the file';
        like $r->{err}, $c->[1], 'says where and what' or diag $r->{err};
    }
};


done_testing;
