# conflux-mock admin API: journal, stats, runtime stubs, reset, bounds.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use CfTest;
use JSON::PP;
use Test::More;
use Time::HiRes qw(time);

my $port = empty_port();
my $file = write_file(tmpdir() . '/admin-stubs.yaml', <<"EOF");
listen: 127.0.0.1:$port
stubs:
  - path: /users/{id}
    body: '{"id": "{id}"}'
  - path: /flaky
    sequence: [503, 200]
EOF
# a small journal, to see it stay bounded
my $mock = spawn(name => 'mock-admin', port => $port, cmd => [bindir() . '/conflux-mock', '-c', $file, '--journal', '5']);

sub get  { http_get($mock->url(shift)) }
sub post { my ($path, $body, $ct) = @_; http_request('POST', $mock->url($path), { 'Content-Type' => $ct // 'application/yaml' }, $body) }
sub json_of { decode_json($_[0]->{body}) }

subtest 'journal' => sub {
    my $t0 = time;
    http_request('GET', $mock->url('/users/7?expand=1'), { 'X-Trace' => 'abc' });
    get('/nowhere');
    get('/__mock/stats'); # admin: not journaled
    my $j = json_of(get('/__mock/requests'));
    is scalar(@$j), 2, 'two requests journaled, admin requests are not';
    my $e = $j->[0];
    is $e->{method}, 'GET', 'method';
    is $e->{path}, '/users/7', 'path';
    is $e->{query}, 'expand=1', 'query';
    is $e->{headers}{'x-trace'}, 'abc', 'headers (lower-case names)';
    ok $e->{headers}{host}, 'host header';
    cmp_ok abs($e->{time} - $t0), '<', 2, 'time is wall clock seconds';
    is $e->{stub}, 'GET /users/{id}', 'which stub answered';
    is $e->{status}, 200, 'status sent';
    ok !$e->{aborted}, 'not aborted';
    ok defined $e->{answered_at} && $e->{answered_at} >= $e->{time}, 'answered_at, not before it arrived';
    ok defined $e->{duration_ms} && $e->{duration_ms} >= 0, 'duration_ms';
    is $j->[1]{stub}, undef, 'unmatched request: stub null';
    is $j->[1]{status}, 404, 'unmatched request: 404';

    my $f = json_of(get('/__mock/requests?path=/nowhere'));
    is scalar(@$f), 1, 'filter by path';
    is scalar(@{ json_of(get('/__mock/requests?limit=1')) }), 1, 'limit';
    is json_of(get('/__mock/requests?limit=1'))->[0]{path}, '/nowhere', 'limit keeps the newest';

    get("/users/$_") for 1 .. 10;
    my $b = json_of(get('/__mock/requests'));
    is scalar(@$b), 5, 'journal bounded by --journal';
    is $b->[-1]{path}, '/users/10', 'keeps the newest';
    is $b->[0]{path}, '/users/6', 'drops the oldest';
};

subtest 'stats' => sub {
    my $s = json_of(get('/__mock/stats'));
    is $s->{total}, 12, 'total';
    is $s->{unmatched}, 1, 'unmatched';
    is $s->{stubs}{'GET /users/{id}'}, 11, 'per stub, keyed by "METHOD path"';
    is $s->{stubs}{'GET /flaky'}, 0, 'unused stubs count 0';
};

subtest 'runtime stubs' => sub {
    my $r = post('/__mock/stubs', "path: /new\nstatus: 202\nbody: fresh\ndelay: 100ms\n");
    is $r->{status}, 200, 'YAML stub accepted';
    is json_of($r)->{published}, 1, 'one published';
    my $n = get('/new');
    is $n->{status}, 202, 'new stub answers';
    is $n->{body}, 'fresh', 'with its body';
    cmp_ok $n->{elapsed}, '>=', 0.095, 'and its delay';

    $r = post('/__mock/stubs', '[{"path": "/new", "status": 200, "body": "replaced"}, {"path": "/other/{x}", "body": "{x}!"}]',
        'application/json');
    is $r->{status}, 200, 'JSON list accepted';
    is json_of($r)->{replaced}, 1, 'one replaced (same method and path)';
    is get('/new')->{body}, 'replaced', 'replacement answers';
    is get('/other/abc')->{body}, 'abc!', 'added stub answers';

    $r = post('/__mock/stubs', "stubs:\n  - path: /users/{id}\n    body: override {id}\n");
    is json_of($r)->{replaced}, 1, '{stubs: [...]} form replaces a file stub';
    is get('/users/5')->{body}, 'override 5', 'override answers';

    my $bad = post('/__mock/stubs', "path: /x\ndelay: soon\n");
    is $bad->{status}, 400, 'bad stub refused';
    like json_of($bad)->{error}, qr/^request:2:8: delay: "soon" is not a duration/, 'with line:col and key';
    $bad = post('/__mock/stubs', "path: /x\nbody_file: /etc/passwd\n");
    is $bad->{status}, 400, 'body_file refused at runtime';
    is post('/__mock/stubs', "[")->{status}, 400, 'broken YAML refused';
    is get('/x')->{status}, 404, 'nothing published by a refused request';

    my $list = json_of(get('/__mock/stubs'));
    ok((grep { $_->{key} eq 'GET /other/{x}' } @$list), 'GET /__mock/stubs lists live stubs');
};

subtest 'reset' => sub {
    is get('/flaky')->{status}, 503, 'sequence step 1';
    is get('/flaky')->{status}, 200, 'sequence step 2';
    my $r = post('/__mock/reset', '');
    is $r->{status}, 200, 'reset';
    is scalar(@{ json_of(get('/__mock/requests')) }), 0, 'journal cleared';
    my $s = json_of(get('/__mock/stats'));
    is $s->{total}, 0, 'total cleared';
    is $s->{stubs}{'GET /flaky'}, 0, 'per-stub counters cleared';
    is get('/flaky')->{status}, 503, 'sequences start over';
    is get('/new')->{body}, 'replaced', 'stubs stay';
};

subtest 'request bodies in the journal' => sub {
    post('/__mock/reset', '');
    http_request('POST', $mock->url('/anything'), { 'Content-Type' => 'text/plain' }, 'hello body');
    http_request('POST', $mock->url('/big'), { 'Content-Type' => 'text/plain' }, 'z' x 10000);
    get('/users/1');
    my $j = json_of(get('/__mock/requests'));
    is $j->[0]{body}, 'hello body', 'body kept';
    is $j->[0]{body_size}, 10, 'body_size';
    is length($j->[1]{body}), 4096, 'a large body is kept up to 4 KiB';
    is $j->[1]{body_size}, 10000, 'but its size is the whole';
    is $j->[2]{body}, undef, 'no body: null';
};

subtest 'GET /__mock/stubs lists a stub with a fault' => sub {
    is post('/__mock/stubs', "path: /broken\nstatus: 502\nfault: reset\n")->{status}, 200, 'stub with a fault accepted';
    my ($s) = grep { $_->{key} eq 'GET /broken' } @{ json_of(get('/__mock/stubs')) };
    ok $s, 'listed';
    is_deeply $s, { key => 'GET /broken', method => 'GET', path => '/broken', status => 502, fault => 'reset', calls => 0,
        sequence_length => 0, priority => 5 }, 'every member, the fault by name';
    my ($f) = grep { $_->{key} eq 'GET /flaky' } @{ json_of(get('/__mock/stubs')) };
    is $f->{fault}, 'none', 'a stub without a fault: "none"';
    is $f->{sequence_length}, 2, 'sequence_length';
};

subtest 'admin errors' => sub {
    is get('/__mock/nope')->{status}, 404, 'unknown admin path';
    is http_request('DELETE', $mock->url('/__mock/stats'))->{status}, 405, 'wrong method';
};

done_testing;
