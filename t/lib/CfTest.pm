# Test helpers for conflux: spawn conflux and conflux-mock on free ports, talk HTTP to them, wait on conditions, check
# how every process ended, clean up.
package CfTest;
use strict;
use warnings;
use Exporter 'import';
use File::Temp qw(tempdir);
use HTTP::Tiny;
use IO::Select;
use IO::Socket::INET;
use JSON::PP;
use POSIX qw(:sys_wait_h);
use Scalar::Util ();
use Test::More;
use Test2::API qw(test2_add_callback_testing_done);
use Time::HiRes qw(time sleep);

our @EXPORT = qw(
    bindir empty_port spawn spawn_mock spawn_conflux
    http_get http_request http_parallel decode_json_ok get_json timing_of tmpdir write_file slurp
    wait_until background run_cmd sanitizer_report
    metrics metric delta
    raw_exchange raw_request parse_response refused_ok
    self_signed_cert h2_connect h2_frame h2_header_block h2_get h2_parse h2_goaway_code
);

use Cwd qw(abs_path);
use File::Basename qw(dirname);
my $ROOT = abs_path(dirname(__FILE__) . '/../..');

# The build directory under test: CONFLUX_BUILD (relative to the repo root or absolute), default "build".
sub bindir {
    my $b = $ENV{CONFLUX_BUILD} // 'build';
    return $b =~ m{^/} ? $b : "$ROOT/$b";
}

# A scratch directory for this test file, kept when CF_TEST_KEEP=1 (its path is printed).
my $TMPDIR;
sub tmpdir {
    $TMPDIR //= tempdir('conflux-test-XXXXXX', TMPDIR => 1, CLEANUP => !$ENV{CF_TEST_KEEP});
    return $TMPDIR;
}

sub write_file {
    my ($path, $content) = @_;
    open my $fh, '>', $path or die "$path: $!";
    print $fh $content;
    close $fh;
    return $path;
}

# The whole content of a file (bytes); dies when it cannot be read.
sub slurp {
    my ($path) = @_;
    open my $fh, '<:raw', $path or die "$path: $!";
    local $/;
    return scalar(<$fh>) // '';
}

# A TCP port nobody listens on right now (bind to port 0, read it, close).
sub empty_port {
    my $s = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0, Listen => 1, ReuseAddr => 1)
        or die "cannot bind: $!";
    my $port = $s->sockport;
    close $s;
    return $port;
}

sub _port_open {
    my $port = shift;
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port, Proto => 'tcp', Timeout => 1);
    return 0 unless $s;
    close $s;
    return 1;
}

# wait_until(sub { CONDITION }, $timeout): evaluates CONDITION every 20 ms until it is true or $timeout seconds (10 by
# default) have passed; returns its last value. A test waits for what it needs to have happened this way, never with a
# sleep: ok(wait_until(sub { ... }), 'what was awaited') fails, instead of hoping, when it does not happen.
sub wait_until {
    my ($cond, $timeout) = @_;
    my $deadline = time + ($timeout // 10);
    while (1) {
        my $v = $cond->();
        return $v if $v || time >= $deadline;
        sleep 0.02;
    }
}

# A sanitizer's report in a process's output (ASan, LSan, UBSan, TSan), with some context, or undef.
sub sanitizer_report {
    my ($text) = @_;
    return undef unless defined $text
        && $text =~ /((?:ERROR|WARNING): (?:Address|Leak|Thread|Memory)Sanitizer|runtime error: |SUMMARY: UndefinedBehaviorSanitizer)/;
    my $at = $-[1];
    return substr($text, $at > 300 ? $at - 300 : 0, 6000);
}

# "exit 0", "exit 1", "signal KILL", from a wait status
sub describe_status {
    my ($status) = @_;
    return 'no exit seen' unless defined $status;
    return 'exit ' . ($status >> 8) unless $status & 127;
    my $n = $status & 127;
    my %name;
    @name{ split ' ', $Config::Config{sig_num} } = split ' ', $Config::Config{sig_name} if eval { require Config; 1 };
    return "signal " . ($name{$n} // $n) . ($status & 128 ? ' (core dumped)' : '');
}

# run_cmd(\@cmd, timeout => 20, env => {NAME => value}): runs a command to its end, stdout and stderr captured apart. Past
# `timeout` seconds it is killed (with whatever it started) and the test fails. A sanitizer report in its output fails
# the test too. Returns {code => exit code (undef when a signal ended it), status => wait status, out, err}.
my $RUNS = 0;
sub run_cmd {
    my ($cmd, %o) = @_;
    my $timeout = $o{timeout} // 20;
    my $base = tmpdir() . '/run-' . $$ . '-' . ++$RUNS;
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        setpgrp(0, 0); # its own process group: a timeout kills what it started as well
        $ENV{$_} = $o{env}{$_} for keys %{ $o{env} // {} };
        open STDIN, '<', '/dev/null';
        open STDOUT, '>', "$base.out" or die;
        open STDERR, '>', "$base.err" or die;
        exec @$cmd or POSIX::_exit(127);
    }
    my $status;
    my $done = wait_until(sub { waitpid($pid, WNOHANG) == $pid and do { $status = $?; 1 } }, $timeout);
    if (!$done) {
        kill 'KILL', -$pid;
        waitpid($pid, 0);
        $status = $?;
        Test::More->builder->ok(0, "@$cmd ended within ${timeout}s");
    }
    my %r = (status => $status, code => ($status & 127 ? undef : $status >> 8), out => slurp("$base.out"),
             err => slurp("$base.err"));
    unlink "$base.out", "$base.err";
    if (my $report = sanitizer_report("$r{err}\n$r{out}")) {
        Test::More->builder->ok(0, "$cmd->[0]: no sanitizer report");
        Test::More->builder->diag($report);
    }
    return \%r;
}

# background(sub { ... }): runs the sub in a child process and returns a handle; $h->wait waits for the child and
# returns what the sub returned (a scalar or a reference to plain data, passed back as JSON). The child leaves with
# POSIX::_exit, so the guards it inherited stay the parent's. $h->pid is its process id.
sub background {
    my ($code) = @_;
    my $file = tmpdir() . '/bg-' . int(rand(1e9)) . '.json';
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        my $r = eval { +{ value => scalar $code->() } } // { error => "$@" };
        write_file($file, JSON::PP->new->allow_nonref->encode($r));
        POSIX::_exit(0);
    }
    return bless { pid => $pid, file => $file }, 'CfTest::Background';
}

# every live guard, weakly: they are stopped, and how each ended is checked, when the test file calls done_testing (a
# check after the plan would not count), or at the latest in END (a file that died)
our @GUARDS;
sub _finish_all {
    for my $g (grep { defined && $_->{owner} == $$ } @GUARDS) {
        $g->finish;
    }
}
test2_add_callback_testing_done(\&_finish_all);
END { _finish_all() }

# spawn(cmd => [...], port => N, name => 'x'): starts a process with its output in a log file and waits until it is
# ready: the port accepts connections, or (ready => qr/...(\d+).../) its log matches, the first capture being its port.
# Dies with the log if it exits first, or is not ready within `timeout` (15 s). Returns a guard (CfTest::Guard): when the
# guard is stopped, or goes out of scope, the process gets TERM and the test asserts that it exited 0 (or as
# exit => ... says) and that its log holds no sanitizer report. On a failing test file the log's tail is printed as
# diagnostics; CF_TEST_KEEP=1 keeps the logs and says where.
sub spawn {
    my %args = @_;
    my $name = $args{name} // 'proc';
    my $log = tmpdir() . "/$name-$$-" . int(rand(1e9)) . ".log";
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        open STDIN, '<', '/dev/null';
        open STDOUT, '>', $log or die;
        open STDERR, '>&', \*STDOUT or die;
        exec @{ $args{cmd} } or die "exec $args{cmd}[0]: $!";
    }
    my $class = $args{class} // 'CfTest::Guard';
    my $guard = bless { pid => $pid, port => $args{port}, log => $log, name => $name, owner => $$,
                        expect => $args{exit} // 0, stop_timeout => $args{stop_timeout} // 15 }, $class;
    push @GUARDS, $guard;
    Scalar::Util::weaken($GUARDS[-1]);
    my $ready = wait_until(sub {
        if (waitpid($pid, WNOHANG) == $pid) {
            $guard->{pid} = undef;
            $guard->{status} = $?;
            $guard->{finished} = 1; # this die says how it ended
            die "$name exited early (" . describe_status($?) . "):\n" . $guard->log_text;
        }
        if ($args{ready}) {
            return 0 unless $guard->log_text =~ $args{ready};
            $guard->{port} //= $1 if $#+ >= 1;
            return 1;
        }
        return !defined $args{port} || _port_open($args{port});
    }, $args{timeout} // 15);
    die "$name was not ready in time:\n" . $guard->log_text unless $ready;
    return $guard;
}

# spawn_mock($yaml, args => [...]): conflux-mock on a free port; "listen:" is added unless the YAML has one. Returns a
# CfTest::Mock guard, which also reads the mock's journal and counters.
sub spawn_mock {
    my ($yaml, %opts) = @_;
    my $port = empty_port();
    $yaml = "listen: 127.0.0.1:$port\n$yaml" unless $yaml =~ /^listen:/m;
    ($port) = $yaml =~ /^listen:\s*\S*:(\d+)/m;
    my $file = write_file(tmpdir() . "/mock-$port.yaml", $yaml);
    return spawn(name => "mock-$port", port => $port, class => 'CfTest::Mock',
                 cmd => [bindir() . '/conflux-mock', '-c', $file, @{ delete $opts{args} // [] }], %opts);
}

# spawn_conflux($yaml): conflux on a free port on 127.0.0.1; a "listen:" block is added unless the YAML has one. The
# guard knows the admin port when the YAML has "admin: 127.0.0.1:PORT" ($gw->admin, $gw->metric(...)).
# wrap => [...] runs conflux through that command, its own command line appended (e.g. a shell that lowers a limit and
# execs "$@", so that the guard's process is conflux itself).
sub spawn_conflux {
    my ($yaml, %opts) = @_;
    my $port = empty_port();
    $yaml = "listen:\n  - host: 127.0.0.1\n    port: $port\n$yaml" unless $yaml =~ /^listen:/m;
    ($port) = $yaml =~ /^listen:\s*\n\s*-\s*(?:host:\s*\S+\s*\n\s*)?port:\s*(\d+)/m unless $opts{port};
    $port = $opts{port} if $opts{port};
    my $file = write_file(tmpdir() . "/conflux-$port.yaml", $yaml);
    my @cmd = (@{ delete $opts{wrap} // [] }, bindir() . '/conflux', '-c', $file, @{ delete $opts{args} // [] });
    my $g = spawn(name => "conflux-$port", port => $port, cmd => \@cmd, %opts);
    $g->{config} = $file;
    ($g->{admin}) = $yaml =~ /^admin:\s*\S*:(\d+)\s*$/m;
    return $g;
}

# http_request($method, $url, \%headers, $body): {status, reason, headers => {lc name => value}, body, elapsed}.
# status 599 means a connection-level failure (HTTP::Tiny's convention); body then holds the error.
# HTTP::Tiny retries an idempotent request once when the connection ends early: to see an upstream fault as a
# client does, talk to the mock over a raw socket instead.
sub http_request {
    my ($method, $url, $headers, $body) = @_;
    my $ua = HTTP::Tiny->new(timeout => 30, keep_alive => 0, max_redirect => 0);
    my $t0 = time;
    my $res = $ua->request($method, $url, { headers => $headers // {}, defined $body ? (content => $body) : () });
    my %h;
    while (my ($k, $v) = each %{ $res->{headers} }) {
        $h{lc $k} = ref $v ? join(', ', @$v) : $v;
    }
    return { status => $res->{status}, reason => $res->{reason}, headers => \%h, body => $res->{content} // '',
             elapsed => time - $t0 };
}

sub http_get {
    my ($url, $headers) = @_;
    return http_request('GET', $url, $headers);
}

# http_parallel($n, $url, headers => {...}): $n concurrent GETs (curl --parallel, one connection each).
# Returns a list of {status, elapsed} plus the wall time of the whole batch.
sub http_parallel {
    my ($n, $url, %opts) = @_;
    my @hdr = map { ('-H', "$_: $opts{headers}{$_}") } keys %{ $opts{headers} // {} };
    my @cmd = ('curl', '-s', '--no-progress-meter', '--parallel', '--parallel-immediate', '--parallel-max', $n,
               '-w', '%{http_code} %{time_total}\n', @hdr, ('-o', '/dev/null', '--url', $url) x $n);
    my $t0 = time;
    open my $fh, '-|', @cmd or die "curl: $!";
    my @res;
    while (my $line = <$fh>) {
        my ($code, $t) = split ' ', $line;
        push @res, { status => $code, elapsed => $t };
    }
    close $fh;
    return (\@res, time - $t0);
}

# GET of a gateway's path: (the response, its body decoded as JSON or undef).
sub get_json {
    my ($gw, $path) = @_;
    my $r = http_get($gw->url($path));
    my $doc = eval { JSON::PP->new->decode($r->{body}) };
    return ($r, $doc);
}

# The Server-Timing entry of one call, e.g. 'els;dur=12.3;desc="ok 3/3"' ('' when there is none).
sub timing_of {
    my ($r, $name) = @_;
    my ($t) = ($r->{headers}{'server-timing'} // '') =~ /(?:^|, )(\Q$name\E;dur=[^,]*)/;
    return $t // '';
}

# Decodes JSON or fails the test (returns undef).
sub decode_json_ok {
    my ($text, $name) = @_;
    my $v = eval { JSON::PP->new->decode($text) };
    ok(defined $v, $name // 'body is JSON') or diag("not JSON: $@\n$text");
    return $v;
}

# /metrics of the admin listener on that port: {'name{labels}' => value}; {} when it does not answer.
sub metrics {
    my ($admin) = @_;
    my $r = http_get("http://127.0.0.1:$admin/metrics");
    return {} unless $r->{status} == 200;
    return { map { /^(conflux_\S+) (\S+)$/ ? ($1 => $2) : () } split /\n/, $r->{body} };
}

# One sample of /metrics ('name' or 'name{labels}' as printed): its value, 0 when the series is absent, NaN when
# /metrics does not answer (so that no comparison holds: a conflux that is gone has nothing "left in flight").
sub metric {
    my ($admin, $name) = @_;
    my $r = http_get("http://127.0.0.1:$admin/metrics");
    return 9**9**9 / 9**9**9 unless $r->{status} == 200;
    return $r->{body} =~ /^\Q$name\E (\S+)$/m ? $1 : 0;
}

# How far a sample moved between two metrics() snapshots (an absent sample counts as 0).
sub delta {
    my ($before, $after, $key) = @_;
    return ($after->{$key} // 0) - ($before->{$key} // 0);
}

# raw_exchange($port, $bytes, timeout => 5): writes $bytes on a new connection to 127.0.0.1:$port and reads until the
# server closes it, the read fails or `timeout` seconds pass. Returns (what was read, 1 if the server closed it).
sub raw_exchange {
    my ($port, $bytes, %o) = @_;
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port, Timeout => 5) or die "connect to $port: $!";
    local $SIG{PIPE} = 'IGNORE';
    syswrite($s, $bytes);
    my ($resp, $closed, $deadline) = ('', 0, time + ($o{timeout} // 5));
    my $sel = IO::Select->new($s);
    while (time < $deadline) {
        last unless $sel->can_read($deadline - time);
        my $n = sysread($s, my $buf, 65536);
        if (!$n) { $closed = 1; last }
        $resp .= $buf;
    }
    close $s;
    return ($resp, $closed);
}

# {status, headers => {lc name => value}, body} of a raw HTTP/1 response (status 0 when there is none).
sub parse_response {
    my ($resp) = @_;
    my ($head, $body) = split /\r\n\r\n/, $resp // '', 2;
    my ($status) = ($head // '') =~ m{\AHTTP/1\.[01] (\d{3})};
    my %hdr = map { /^([^:]+):\s*(.*)$/ ? (lc $1 => $2) : () } split /\r\n/, $head // '';
    return { status => $status // 0, headers => \%hdr, body => $body // '' };
}

# raw_request($port, $bytes, %o): raw_exchange, parsed; also {raw => the bytes, closed => 1 if the server closed}.
sub raw_request {
    my ($resp, $closed) = raw_exchange(@_);
    return { %{ parse_response($resp) }, raw => $resp, closed => $closed };
}

# refused_ok($gw, $mock, $name, $bytes, $status, $why): a subtest that sends $bytes on a new connection to conflux and
# asserts a refusal as docs/http.md promises it: $status, conflux's JSON error with a message matching $why,
# Connection: close, the connection closed, and nothing in the mock's journal (it is reset first).
sub refused_ok {
    my ($gw, $mock, $name, $bytes, $status, $why) = @_;
    subtest $name => sub {
        $mock->reset;
        my $r = raw_request($gw->port, $bytes);
        is($r->{status}, $status, "answered $status") or diag($r->{raw});
        like($r->{headers}{connection} // '', qr/^close$/i, 'says Connection: close');
        ok($r->{closed}, 'and closes the connection');
        my $doc = eval { JSON::PP->new->decode($r->{body}) };
        ok($doc && ($doc->{message} // '') =~ $why, 'JSON error says why') or diag($r->{raw});
        is(scalar @{ $mock->journal }, 0, 'nothing reached the upstream') or diag explain $mock->journal;
    };
}

# self_signed_cert(): a certificate for localhost and 127.0.0.1 (EC P-256, self-signed) and its key, made once per
# test file in its scratch directory. Returns (certificate path, key path), or () when openssl could not make them.
sub self_signed_cert {
    my ($cert, $key) = (tmpdir() . '/cert.pem', tmpdir() . '/key.pem');
    return ($cert, $key) if -s $cert && -s $key;
    my $r = run_cmd(['openssl', 'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
                     '-days', '2', '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1',
                     '-keyout', $key, '-out', $cert], timeout => 30);
    return ($r->{code} // -1) == 0 ? ($cert, $key) : ();
}

# HTTP/2 by hand (RFC 9113), for the frames no client library would send.
# h2_frame($type, $flags, $stream, $payload): one frame (section 4.1).
sub h2_frame {
    my ($type, $flags, $stream, $payload) = @_;
    my $len = length $payload;
    return pack('C3CCN', $len >> 16, ($len >> 8) & 255, $len & 255, $type, $flags, $stream) . $payload;
}

# h2_connect($port, id => value, ...): a TLS connection to 127.0.0.1:$port (the certificate not verified) on which ALPN
# chose h2, the client preface and a SETTINGS frame with those settings sent. Dies otherwise.
sub h2_connect {
    my ($port, %settings) = @_;
    require IO::Socket::SSL;
    my $s = IO::Socket::SSL->new(PeerAddr => '127.0.0.1', PeerPort => $port, SSL_verify_mode => 0,
                                 SSL_alpn_protocols => ['h2'], Timeout => 5)
        or die "TLS to $port: " . IO::Socket::SSL::errstr();
    die "ALPN did not choose h2\n" unless ($s->alpn_selected // '') eq 'h2';
    my $preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" . h2_frame(4, 0, 0, join '', map { pack('nN', $_, $settings{$_}) } sort keys %settings);
    syswrite($s, $preface) == length $preface or die "h2 preface: $!";
    return $s;
}

# The HPACK block of a GET of $path: :method GET and :scheme https from the static table, :path and :authority
# (localhost) as literals without indexing, no Huffman coding.
sub h2_header_block {
    my ($path) = @_;
    return "\x82\x87" . "\x04" . chr(length $path) . $path . "\x01" . chr(length 'localhost') . 'localhost';
}

# A GET of $path on $stream: one HEADERS frame with END_STREAM and END_HEADERS.
sub h2_get {
    my ($stream, $path) = @_;
    return h2_frame(1, 0x5, $stream, h2_header_block($path));
}

# Takes the whole frames off the front of the bytes in $$buf: a list of [type, flags, stream, payload].
sub h2_parse {
    my ($buf) = @_;
    my @frames;
    while (length($$buf) >= 9) {
        my ($l1, $l2, $l3, $type, $flags, $stream) = unpack('C3CCN', $$buf);
        my $len = ($l1 << 16) | ($l2 << 8) | $l3;
        last if length($$buf) < 9 + $len;
        push @frames, [$type, $flags, $stream & 0x7fffffff, substr($$buf, 9, $len)];
        substr($$buf, 0, 9 + $len) = '';
    }
    return @frames;
}

# The error code of the first GOAWAY among the frames (11: ENHANCE_YOUR_CALM), or undef when there is none.
sub h2_goaway_code {
    my ($frames) = @_;
    my ($g) = grep { $_->[0] == 7 } @$frames;
    return $g ? unpack('x4N', $g->[3]) : undef;
}

package CfTest::Background;
use POSIX ();

sub pid { $_[0]{pid} }

sub wait {
    my ($self) = @_;
    if (!exists $self->{result}) {
        waitpid($self->{pid}, 0);
        my $text = eval { CfTest::slurp($self->{file}) } // '';
        my $r = eval { JSON::PP->new->allow_nonref->decode($text) } // { error => "no result from the child (status $?)" };
        die "background child failed: $r->{error}" if exists $r->{error};
        $self->{result} = $r->{value};
    }
    return $self->{result};
}

package CfTest::Guard;
use POSIX qw(:sys_wait_h);
use Test::More;

sub port { $_[0]{port} }
sub pid  { $_[0]{pid} }
sub log_path { $_[0]{log} }
sub url  { my ($self, $path) = @_; return "http://127.0.0.1:$self->{port}" . ($path // '') }
sub status { $_[0]{status} }

sub log_text {
    my $self = shift;
    open my $fh, '<', $self->{log} or return '';
    local $/;
    return scalar(<$fh>) // '';
}

# how many times $re matches in the log
sub log_count {
    my ($self, $re) = @_;
    my @m = $self->log_text =~ /$re/g;
    return scalar @m;
}

# Sends a signal the process is meant to handle and live on (HUP, STOP, CONT), or to end by (then call wait_exit).
sub signal {
    my ($self, $sig) = @_;
    CORE::kill($sig, $self->{pid}) if $self->{pid};
}

# How the process is meant to end when stopped: an exit code (0 unless spawn's exit => said otherwise) or the name of a
# signal it is meant to die of.
sub expect_exit {
    my ($self, $what) = @_;
    $self->{expect} = $what;
}

# Waits up to $timeout seconds for the process to end by itself (after a signal the test sent); past that it is killed
# and the test fails. Then checks how it ended (see check). Returns its wait status.
sub wait_exit {
    my ($self, $timeout, $why) = @_;
    my $pid = $self->{pid} or return $self->{status};
    my $ended = CfTest::wait_until(sub { waitpid($pid, WNOHANG) == $pid and do { $self->{status} = $?; 1 } }, $timeout // 10);
    if (!$ended) {
        CORE::kill('KILL', $pid);
        waitpid($pid, 0);
        $self->{status} = undef;
        $self->{late} = sprintf('it did not exit within %ss%s, and was killed', $timeout // 10, $why ? " of $why" : '');
    }
    $self->{pid} = undef;
    $self->{after} = $why;
    $self->check;
    return $self->{status};
}

# Sends TERM (or signal => 'INT') and waits for the exit (up to timeout => seconds, 15 by default: conflux's own
# shutdown_timeout is 10 s); then checks how it ended. Returns the wait status (undef if it had to be killed).
sub stop {
    my ($self, %o) = @_;
    return $self->{status} unless $self->{pid};
    my $sig = $o{signal} // 'TERM';
    CORE::kill($sig, $self->{pid});
    return $self->wait_exit($o{timeout} // $self->{stop_timeout}, "SIG$sig");
}

# kill('KILL'): the process is meant to die of this signal: sends it, waits, checks that it died of it.
sub kill {
    my ($self, $sig) = @_;
    $self->{expect} = $sig;
    return $self->stop(signal => $sig);
}

# Asserts, once, that the process ended as expected and that its log holds no sanitizer report.
sub check {
    my $self = shift;
    return if $self->{checked}++;
    my $tb = Test::More->builder;
    my $expect = $self->{expect};
    my $st = $self->{status};
    my $want = $expect =~ /^\d+$/ ? "exit $expect" : "signal $expect";
    my $got = $self->{late} // CfTest::describe_status($st);
    my $after = $self->{after} ? " after $self->{after}" : '';
    $tb->ok(!$self->{late} && CfTest::describe_status($st) eq $want, "$self->{name} ended with $want$after")
        or $tb->diag("$self->{name}: $got");
    my $report = CfTest::sanitizer_report($self->log_text);
    $tb->ok(!defined $report, "$self->{name}: no sanitizer report in its log") or $tb->diag($report);
}

sub DESTROY {
    my $self = shift;
    local ($?, $@, $!);
    $self->finish;
}

# Stops the process (unless it was) and checks how it ended; then, once, shows where its log is (CF_TEST_KEEP=1) or
# its tail when the test file is failing. Nothing in a forked child: the processes are the parent's.
sub finish {
    my $self = shift;
    return if ($self->{owner} // $$) != $$;
    return if $self->{finished}++;
    $self->stop if $self->{pid};
    $self->check;
    my $tb = Test::More->builder;
    if ($ENV{CF_TEST_KEEP}) {
        $tb->diag("$self->{name} log kept: $self->{log}");
    } elsif (!$tb->is_passing) {
        my $text = $self->log_text;
        $text = substr($text, -4000) if length $text > 4000;
        $tb->diag("--- $self->{name} log (tail) ---\n$text") if length $text;
    }
}

sub admin { $_[0]{admin} }
sub metric { my ($self, $name) = @_; return CfTest::metric($self->{admin} // die("$self->{name}: no admin port"), $name) }
sub metrics { my ($self) = @_; return CfTest::metrics($self->{admin} // die("$self->{name}: no admin port")) }

# conflux-mock: its journal, counters and reset, through its admin API
package CfTest::Mock;
our @ISA = ('CfTest::Guard');

sub _admin_json {
    my ($self, $path) = @_;
    my $r = CfTest::http_get($self->url($path));
    my $v = $r->{status} == 200 ? eval { JSON::PP->new->decode($r->{body}) } : undef;
    die "$self->{name}: GET $path: $r->{status} $r->{body}\n" unless defined $v;
    return $v;
}

# the journal (oldest first), or only the requests to one path: $mock->journal('/users/1')
sub journal {
    my ($self, $path) = @_;
    return $self->_admin_json('/__mock/requests' . (defined $path ? "?path=$path" : ''));
}

# the newest request in the journal, or undef when it is empty
sub last_request { $_[0]->_admin_json('/__mock/requests?limit=1')->[0] }

# /__mock/stats: {total, unmatched, aborted, stubs => {'METHOD path' => count}}
sub stats { $_[0]->_admin_json('/__mock/stats') }

# how many requests the stub 'METHOD path' answered since the last reset
sub stub_count {
    my ($self, $stub) = @_;
    return $self->stats->{stubs}{$stub} // 0;
}

# clears the journal, the counters and the sequences
sub reset {
    my ($self) = @_;
    my $r = CfTest::http_request('POST', $self->url('/__mock/reset'));
    die "$self->{name}: POST /__mock/reset: $r->{status}\n" unless $r->{status} == 200;
}

1;
