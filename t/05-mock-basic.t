# conflux-mock: stubs, templates, delays on the loop, sequences, fault rates, /__mock/respond, argv, bad files.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use CfTest;
use JSON::PP;
use Test::More;
use Time::HiRes qw(time);

my $dir = tmpdir();
write_file("$dir/profile.json", qq({"name": "from a file"}\n));

my $mock = spawn_mock(<<"EOF");
stubs:
  - path: /users/{id}
    headers: { Cache-Control: max-age=60, X-Mock: yes }
    body: '{"id": "{id}", "name": "user {id}"}'
  - path: /users/me
    body: '{"id": "me"}'
  - path: /files/{rest*}
    body: 'file {rest}'
  - path: /any
    method: '*'
    body: 'any method'
  - path: /post-only
    method: POST
    status: 201
    body: '{"created": true}'
  - path: /inventory
    body: '{"sku": "{query.sku}"}'
  - path: /from-file
    body_file: profile.json
  - path: /fixed
    delay: 300ms
    body: 'fixed'
  - path: /uniform
    delay: { uniform: [100ms, 300ms] }
  - path: /lognormal
    delay: { lognormal: { median: 50ms, p99: 400ms } }
  - path: /flaky
    sequence: [503, 503, 200]
    body: 'flaky'
  - path: /half
    fault: empty
    fault_rate: 0.5
  - path: /parallel
    delay: 500ms
EOF

sub get { http_get($mock->url(shift)) }

# One request on a fresh connection, the whole answer as raw bytes ('' when closed without a byte).
# (HTTP::Tiny retries a GET once when the connection ends early, which would hide half of the faults.)
sub raw_get {
    my ($path) = @_;
    my ($data) = raw_exchange($mock->port, "GET $path HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    return $data;
}

subtest 'stubs, parameters and templates' => sub {
    my $r = get('/users/42');
    is $r->{status}, 200, 'status';
    is_deeply decode_json($r->{body}), { id => '42', name => 'user 42' }, '{id} substituted in the body';
    is $r->{headers}{'cache-control'}, 'max-age=60', 'configured header';
    is $r->{headers}{'x-mock'}, 'yes', 'second configured header';
    is $r->{headers}{'content-type'}, 'application/json', 'JSON bodies default to application/json';
    is $r->{headers}{'content-length'}, length($r->{body}), 'Content-Length';

    is decode_json(get('/users/me')->{body})->{id}, 'me', 'a literal segment beats {param}';
    is get('/users/a%22b')->{body}, '{"id": "a%22b", "name": "user a%22b"}', 'captures are raw path bytes';
    is get('/files/a/b/c.txt')->{body}, 'file a/b/c.txt', '{rest*} takes the rest of the path';
    is get('/files/a/b/c.txt')->{headers}{'content-type'}, 'text/plain; charset=utf-8', 'text bodies default to text/plain';
    is get('/users/42/extra')->{status}, 404, 'extra segments do not match';

    is http_request('DELETE', $mock->url('/any'))->{body}, 'any method', 'method "*" matches any method';
    is http_request('POST', $mock->url('/users/1'))->{status}, 404, 'method defaults to GET';
    my $p = http_request('POST', $mock->url('/post-only'), {}, 'x');
    is $p->{status}, 201, 'configured status';
    is get('/post-only')->{status}, 404, 'POST stub does not answer GET';

    is get('/inventory?sku=A%22B&x=1')->{body}, '{"sku": "A\\"B"}', '{query.sku} decoded and JSON-escaped';
    is get('/inventory')->{body}, '{"sku": ""}', 'absent query parameter is empty';
    is get('/from-file')->{body}, qq({"name": "from a file"}\n), 'body_file read relative to the stubs file';

    my $nf = get('/nothing/here');
    is $nf->{status}, 404, 'unmatched is 404';
    my $j = decode_json_ok($nf->{body});
    is $j->{error}, 'no stub', 'error names the cause';
    is $j->{path}, '/nothing/here', 'and the path';
};

subtest 'delays' => sub {
    my $r = get('/fixed');
    is $r->{status}, 200, 'fixed delay answers';
    cmp_ok $r->{elapsed}, '>=', 0.28, 'fixed 300ms: not early';
    cmp_ok $r->{elapsed}, '<', 0.6, 'fixed 300ms: not late';

    # The delays the mock drew are in its journal (delay_ms): their distribution is checked there, free of the time a
    # busy machine adds; the answers' times show each delay was served, not early, and (by the median) not late.
    $mock->reset;
    my @u = map { get('/uniform')->{elapsed} } 1 .. 10;
    my @ud = map { $_->{delay_ms} } @{ $mock->journal('/uniform') };
    is scalar(@ud), 10, 'uniform: ten delays journaled';
    my ($min, $max) = (sort { $a <=> $b } @ud)[0, -1];
    cmp_ok $min, '>=', 100, 'uniform [100ms, 300ms]: none drawn below';
    cmp_ok $max, '<=', 300, 'uniform: none drawn above';
    cmp_ok $max - $min, '>', 20, 'uniform: delays vary';
    served_as_drawn('uniform', \@u, \@ud);

    my @l = map { get('/lognormal')->{elapsed} } 1 .. 31;
    my @ld = map { $_->{delay_ms} } @{ $mock->journal('/lognormal') };
    is scalar(@ld), 31, 'lognormal: 31 delays journaled';
    my $median = (sort { $a <=> $b } @ld)[15];
    cmp_ok $median, '>', 25, "lognormal median 50ms: the median drawn, $median ms, is not far below";
    cmp_ok $median, '<', 110, 'lognormal: not far above';
    served_as_drawn('lognormal', \@l, \@ld);
};

# Each answer came no earlier than the delay drawn for it (timers may fire a few ms early), and half of them within
# 50 ms of it: the delay is what makes them wait.
sub served_as_drawn {
    my ($name, $elapsed, $drawn) = @_;
    my @late = map { $elapsed->[$_] - $drawn->[$_] / 1000 } 0 .. $#$elapsed;
    my @early = grep { $_ < -0.005 } @late;
    is scalar(@early), 0, "$name: no answer came before its delay" or diag explain \@late;
    my $median = (sort { $a <=> $b } @late)[@late / 2];
    cmp_ok $median, '<', 0.05, sprintf('%s: half of the answers came within %.0f ms of their delay', $name, 1000 * $median);
}

subtest '200 concurrent delayed requests finish in about one delay' => sub {
    # (the stub's body is empty: http_parallel's curl prints bodies to the same stream as its -w lines)
    $mock->reset;
    my ($res, $wall) = http_parallel(200, $mock->url('/parallel'));
    is scalar(@$res), 200, '200 answers';
    is scalar(grep { $_->{status} == 200 } @$res), 200, 'all 200';
    cmp_ok $wall, '>=', 0.5, 'not before the delay';
    # serialized, they would take 100 s; the mock's own clock says how long each waited once it arrived
    my @d = sort { $a <=> $b } map { $_->{duration_ms} // 1e9 } @{ $mock->journal('/parallel') };
    is scalar(@d), 200, 'all 200 journaled';
    cmp_ok $d[-1], '<', 1000, "each was answered about one delay after it arrived (the longest: $d[-1] ms)";
    cmp_ok $wall, '<', 5, "wall time $wall s: the loop does not serialize delays";
};

subtest 'sequence and fault_rate' => sub {
    is_deeply [map { get('/flaky')->{status} } 1 .. 5], [503, 503, 200, 200, 200], 'sequence, last step repeats';
    my ($faults, $answers) = (0, 0);
    for (1 .. 200) {
        my $data = raw_get('/half');
        $faults++ if $data eq '';
        $answers++ if $data =~ m{^HTTP/1\.1 200 };
    }
    is $faults + $answers, 200, 'each request got either the fault or the answer';
    cmp_ok $faults, '>=', 60, "fault_rate 0.5: $faults of 200 faulted (at least 30%)";
    cmp_ok $faults, '<=', 140, 'fault_rate 0.5: at most 70%';
};

subtest '/__mock/respond' => sub {
    my $r = get('/__mock/respond?status=503&body=%7B%22a%22%3A+1%7D&header=X-Reason:testing&delay=200ms');
    is $r->{status}, 503, 'status as asked';
    is $r->{body}, '{"a": 1}', 'body percent-decoded, + is a space';
    is $r->{headers}{'x-reason'}, 'testing', 'header as asked';
    is $r->{headers}{'content-type'}, 'application/json', 'content type guessed';
    cmp_ok $r->{elapsed}, '>=', 0.19, 'delay as asked';
    cmp_ok $r->{elapsed}, '<', 0.5, 'not much later';
    is get('/__mock/respond')->{status}, 200, 'defaults to 200';
    my $bad = get('/__mock/respond?status=abc');
    is $bad->{status}, 400, 'bad status is refused';
    like $bad->{body}, qr/status/, 'and named';
    is get('/__mock/respond?colour=red')->{status}, 400, 'unknown parameter refused';
    is get('/__mock/respond?fault=reset')->{status}, 599, 'fault as asked';
};

subtest 'command line: --stub, --port 0, --version, SIGTERM' => sub {
    my $bin = bindir() . '/conflux-mock';
    my $v = run_cmd([$bin, '--version']);
    is $v->{code}, 0, '--version: exit 0';
    like $v->{out}, qr/^conflux-mock \d+\.\d+/, '--version';
    my $h = run_cmd([$bin, '--help']);
    is $h->{code}, 0, '--help: exit 0';
    like $h->{out}, qr/usage: conflux-mock/, '--help';
    my $g = spawn(name => 'mock-port0', ready => qr/^listening on 127\.0\.0\.1:(\d+)$/m,
                  cmd => [$bin, '--port', '0', '--stub', 'GET /users/{id} 200 {"id":"{id}"} delay=100ms header=X-A:b',
                          '--stub', 'POST /x 202 sequence=500,202']);
    my $port = $g->port;
    like $g->log_text, qr/^listening on 127\.0\.0\.1:$port$/m, 'prints the bound port';
    my $r = http_get("http://127.0.0.1:$port/users/7");
    is $r->{body}, '{"id":"7"}', '--stub body with {id}';
    is $r->{headers}{'x-a'}, 'b', '--stub header=';
    cmp_ok $r->{elapsed}, '>=', 0.095, '--stub delay=';
    is http_request('POST', "http://127.0.0.1:$port/x")->{status}, 500, '--stub sequence= first';
    is http_request('POST', "http://127.0.0.1:$port/x")->{status}, 202, '--stub sequence= second';
    my $t0 = time;
    $g->stop; # and checks: exit 0 after SIGTERM
    cmp_ok time - $t0, '<', 1.5, 'promptly';

    my $bad = run_cmd([$bin, '--port', '0', '--stub', 'GET /x notastatus']);
    is $bad->{code}, 1, 'bad --stub: exit 1';
    like $bad->{err}, qr/"notastatus" is not a status/, 'and says why';
};

subtest 'bad stub files fail at start with file:line:col and key path' => sub {
    my $bin = bindir() . '/conflux-mock';
    my @cases = (
        [ "stubs:\n  - path: /a\n  - path: /b\n    delay: 5 sec\n", qr/:4:12: stubs\[1\]\.delay: "5 sec" is not a duration/ ],
        [ "stubs:\n  - path: /a\n    colour: red\n", qr/:3:5: stubs\[0\]: unknown key "colour"|stubs\[0\].*colour/ ],
        [ "stubs:\n  - path: /a\n    delay: { uniform: [900ms, 100ms] }\n", qr/stubs\[0\]\.delay\.uniform: .*lower bound/ ],
        [ "stubs:\n  - path: /a\n    fault: explode\n", qr/:3:12: stubs\[0\]\.fault: / ],
        [ "stubs:\n  - path: /a\n    fault_rate: 2\n", qr/stubs\[0\]\.fault_rate: "2" is not a fraction/ ],
        [ "stubs:\n  - path: /a\n    sequence: [503, boom]\n", qr/stubs\[0\]\.sequence\[1\]: "boom"/ ],
        [ "stubs:\n  - path: a/b\n", qr/:2:11: stubs\[0\]\.path: "a\/b" must start with \// ],
        [ "stubs:\n  - path: /a\n    body: '{id}'\n", qr/stubs\[0\]\.body: \{id\} is not a parameter/ ],
        [ "stubs:\n  - path: /a\n    body_file: /nonexistent/x\n", qr/stubs\[0\]\.body_file: cannot open/ ],
        [ "stubs:\n  - path: /a\n  - path: /a\n", qr/stubs\[1\]: a second stub for GET \/a/ ],
        [ "stubs:\n  - method: GET\n", qr/stubs\[0\]: path is required/ ],
        [ "stubs: [\n", qr/invalid YAML/ ],
    );
    my $i = 0;
    for my $c (@cases) {
        my $file = write_file("$dir/bad-" . $i++ . ".yaml", $c->[0]);
        my $r = run_cmd([$bin, '-c', $file, '--port', '0']);
        my $out = $r->{out} . $r->{err};
        is $r->{code}, 1, "exit 1 for: " . (split /\n/, $c->[0])[-1];
        like $out, qr/\Q$file\E/, 'names the file';
        like $out, $c->[1], 'says where and what';
    }
};

done_testing;
