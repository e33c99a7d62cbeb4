# conflux-mock scenarios: state machines across stubs (scenario, state, next_state), reset, the admin API, and one
# transition per state under concurrent requests.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use CfTest;
use JSON::PP;
use Test::More;

my $mock = spawn_mock(<<'EOF');
stubs:
  - path: /cart
    scenario: checkout
    state: started
    body: '{"items": []}'
  - path: /cart
    method: POST
    scenario: checkout
    state: started
    next_state: has_items
    status: 201
    body: added
  - path: /cart
    scenario: checkout
    state: has_items
    body: '{"items": ["book"]}'
  - path: /checkout
    method: POST
    scenario: checkout
    state: has_items
    next_state: paid
    match: { json: { pay: true } }
    body: paid
  - path: /cart
    scenario: checkout
    state: paid
    body: '{"items": [], "order": "placed"}'
  - path: /receipt
    scenario: checkout
    body: any-state
  - path: /race
    scenario: race
    state: started
    next_state: done
    status: 201
    delay: 300ms
    body: first
  - path: /race
    scenario: race
    state: done
    body: later
EOF

sub get  { my ($path) = @_; http_request('GET', $mock->url($path)) }
sub post { my ($path, $body) = @_; http_request('POST', $mock->url($path), {}, $body) }
sub put_state {
    my ($name, $body) = @_;
    http_request('PUT', $mock->url("/__mock/scenarios/$name"), { 'Content-Type' => 'application/json' }, $body);
}
sub answer { my $r = shift; "$r->{status} $r->{body}" }
sub scenarios { +{ map { $_->{name} => $_ } @{ decode_json(get('/__mock/scenarios')->{body}) } } }

subtest 'cart -> checkout -> paid: each state its own answer' => sub {
    is scenarios()->{checkout}{state}, 'started', 'a scenario starts in "started"';
    is answer(get('/cart')), '200 {"items": []}', 'started: an empty cart';
    is answer(get('/cart')), '200 {"items": []}', 'a stub without next_state leaves the state alone';
    is answer(get('/receipt')), '200 any-state', 'a stub without state: matches in any state';
    is answer(post('/cart', 'book')), '201 added', 'add to the cart';
    is scenarios()->{checkout}{state}, 'has_items', 'next_state taken';
    is answer(get('/cart')), '200 {"items": ["book"]}', 'has_items: the cart has the book';
    is post('/cart', 'again')->{status}, 404, 'the adding stub wants "started": no second add';
    is post('/checkout', '{"pay": false}')->{status}, 404, 'conditions still apply: no transition on a miss';
    is scenarios()->{checkout}{state}, 'has_items', 'state unchanged by the miss';
    is answer(post('/checkout', '{"pay": true}')), '200 paid', 'pay';
    is answer(get('/cart')), '200 {"items": [], "order": "placed"}', 'paid: the order is placed';
    is answer(get('/receipt')), '200 any-state', 'the stateless stub still answers';
    my $j = $mock->journal('/cart');
    is $j->[-1]{stub}, 'GET /cart [scenario checkout=paid]', 'the journal names the stub by its scenario state';
};

subtest 'near miss names the scenario state' => sub {
    my $r = post('/checkout', '{"pay": true}');
    is $r->{status}, 404, 'paid: checkout wants has_items';
    my $j = decode_json($r->{body});
    is $j->{closest}{stub}, 'POST /checkout [json {"pay":true}, scenario checkout=has_items]', 'closest';
    is_deeply $j->{closest}{missed}, ['scenario checkout: expected state "has_items", got "paid"'], 'missed: the state';
};

subtest 'GET /__mock/scenarios, PUT /__mock/scenarios/NAME' => sub {
    my $s = scenarios();
    is_deeply $s->{checkout}, { name => 'checkout', state => 'paid', states => [qw(started has_items paid)] },
        'name, current state, the states its stubs name';
    is_deeply [map { $_->{name} } @{ decode_json(get('/__mock/scenarios')->{body}) }], [qw(checkout race)], 'in file order';

    my $r = put_state('checkout', '{"state": "has_items"}');
    is $r->{status}, 200, 'PUT a known state';
    is decode_json($r->{body})->{state}, 'has_items', 'answers the scenario';
    is answer(get('/cart')), '200 {"items": ["book"]}', 'and the stubs follow it';
    is put_state('checkout', '{"state": "shipped"}')->{status}, 400, 'a state no stub names: 400';
    like put_state('checkout', '{"state": "shipped"}')->{body}, qr/"states":\["started","has_items","paid"\]/, 'lists the states';
    my ($listed) = grep { $_->{key} eq 'POST /cart [scenario checkout=started]' } @{ decode_json(get('/__mock/stubs')->{body}) };
    is_deeply [@$listed{qw(scenario state next_state)}], [qw(checkout started has_items)], 'GET /__mock/stubs shows the scenario keys';
    is put_state('nosuch', '{"state": "started"}')->{status}, 404, 'unknown scenario: 404';
    is put_state('checkout', 'not json')->{status}, 400, 'a body that is not {"state": ...}: 400';
    is put_state('checkout', '{"state": 1}')->{status}, 400, 'state not a string: 400';
    is http_request('DELETE', $mock->url('/__mock/scenarios/checkout'))->{status}, 405, 'other methods: 405';
    is scenarios()->{checkout}{state}, 'has_items', 'refusals changed nothing';
};

subtest 'POST /__mock/reset puts every scenario back to started' => sub {
    put_state('race', '{"state": "done"}');
    $mock->reset;
    my $s = scenarios();
    is $s->{checkout}{state}, 'started', 'checkout';
    is $s->{race}{state}, 'started', 'race';
    is answer(get('/cart')), '200 {"items": []}', 'the started stubs answer again';
};

subtest 'one transition per state under concurrent requests' => sub {
    # the first stub waits 300ms before answering: its transition happens when it is chosen, not when it answers, so
    # the other 19 requests, all in flight meanwhile, see "done"
    my ($res) = http_parallel(20, $mock->url('/race'));
    my %by;
    $by{ $_->{status} }++ for @$res;
    is scalar(@$res), 20, 'twenty answers';
    is $by{201} // 0, 1, 'exactly one got the started answer';
    is $by{200} // 0, 19, 'the rest got the done answer';
    is $mock->stub_count('GET /race [scenario race=started]'), 1, 'the started stub answered once';
    is $mock->stub_count('GET /race [scenario race=done]'), 19, 'the done stub the rest';
};

subtest 'runtime stubs join scenarios; replacing a stub keeps its scenario state' => sub {
    $mock->reset;
    post('/cart', 'x');
    my $r = http_request('POST', $mock->url('/__mock/stubs'), {}, <<'EOF');
- path: /cart
  scenario: checkout
  state: has_items
  body: replaced
- path: /refund
  method: POST
  scenario: checkout
  state: paid
  next_state: refunded
  body: refunded
EOF
    is $r->{status}, 200, 'accepted' or diag $r->{body};
    is decode_json($r->{body})->{replaced}, 1, 'one replaced';
    is scenarios()->{checkout}{state}, 'has_items', 'the scenario kept its state';
    is answer(get('/cart')), '200 replaced', 'the replacement answers in it';
    is_deeply scenarios()->{checkout}{states}, [qw(started has_items paid refunded)], 'the new stub adds its states';
    $r = http_request('POST', $mock->url('/__mock/stubs'), {}, "path: /new\nscenario: fresh\nstate: other\n");
    is scenarios()->{fresh}{state}, 'started', 'a scenario first named at runtime starts in started';
    is get('/new')->{status}, 404, 'so a stub for another state does not match';
};

subtest 'bad scenario keys fail at start with file:line:col' => sub {
    my $bin = bindir() . '/conflux-mock';
    my @cases = (
        ["  - path: /x\n    state: paid\n", qr/:3:\d+: stubs\[0\]\.state: needs scenario:/],
        ["  - path: /x\n    next_state: paid\n", qr/:3:\d+: stubs\[0\]\.next_state: needs scenario:/],
        ["  - path: /x\n    scenario: \"has space\"\n", qr/:3:\d+: stubs\[0\]\.scenario: "has space": use letters/],
        ["  - path: /x\n    scenario: s\n    state: " . ('a' x 200) . "\n", qr/:4:\d+: stubs\[0\]\.state: longer than 128/],
        ["  - path: /x\n    scenario: s\n    state: a\n  - path: /x\n    scenario: s\n    state: a\n",
         qr/:5:\d+: stubs\[1\]: a second stub for GET \/x \[scenario s=a\]/],
    );
    for my $c (@cases) {
        my $file = write_file(tmpdir() . '/bad-scenario.yaml', "stubs:\n$c->[0]");
        my $r = run_cmd([$bin, '-c', $file, '--port', '0']);
        is $r->{code}, 1, 'exit 1 for: ' . join(' | ', split /\n/, $c->[0]);
        like $r->{err}, $c->[1], 'says where and what' or diag $r->{err};
    }
};

done_testing;
