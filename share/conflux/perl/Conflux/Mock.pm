package Conflux::Mock;
# Conflux::Mock: conflux-mock for a project's own integration tests. Starts the mock from a stubs file (or YAML text)
# on a free port of 127.0.0.1, waits until it answers, and gives the journal, the counters, runtime stubs, scenarios
# and reset to the test; stops it when the object goes away. Core Perl only (HTTP::Tiny, JSON::PP, IO::Socket::INET).
# Documented in conflux's docs/mock.md, "Using the mock in your own tests".
use strict;
use warnings;
use File::Temp ();
use HTTP::Tiny;
use IO::Socket::INET;
use JSON::PP ();
use POSIX ();
use Time::HiRes ();

our $VERSION = '1';

# The conflux-mock to run: $ENV{CONFLUX_MOCK}, else the one installed beside this module (PREFIX/share/conflux/perl ->
# PREFIX/bin), else the first on PATH.
sub _binary {
    return $ENV{CONFLUX_MOCK} if $ENV{CONFLUX_MOCK};
    my ($dir) = __FILE__ =~ m{^(.*)/share/conflux/perl/Conflux/Mock\.pm$};
    return "$dir/bin/conflux-mock" if defined $dir && -x "$dir/bin/conflux-mock";
    for my $d (split /:/, $ENV{PATH} // '') {
        return "$d/conflux-mock" if -x "$d/conflux-mock";
    }
    die "Conflux::Mock: conflux-mock not found (set CONFLUX_MOCK, or put it on PATH)\n";
}

# Conflux::Mock->start(file => 'stubs.yaml') or ->start(yaml => "stubs:\n  - path: /x\n") and optionally
# args => [...] (more conflux-mock options, e.g. --seed 1), timeout => seconds to wait for it (default 10).
sub start {
    my ($class, %o) = @_;
    my $self = bless { tmp => File::Temp->newdir('conflux-mock-XXXXXX', TMPDIR => 1) }, $class;
    my $file = $o{file};
    if (!defined $file) {
        defined $o{yaml} or die "Conflux::Mock->start: give file => PATH or yaml => TEXT\n";
        $file = "$self->{tmp}/stubs.yaml";
        open my $fh, '>', $file or die "Conflux::Mock: $file: $!\n";
        print $fh $o{yaml};
        close $fh;
    }
    $self->{log} = "$self->{tmp}/mock.log";
    # port 0: the mock picks a free port and says which on its first line (no race with another test's port)
    my @cmd = (_binary(), '-c', $file, '--host', '127.0.0.1', '--port', 0, @{ $o{args} // [] });
    my $pid = fork // die "Conflux::Mock: fork: $!\n";
    if ($pid == 0) {
        open STDOUT, '>>', $self->{log};
        open STDERR, '>>', $self->{log};
        exec @cmd or POSIX::_exit(127);
    }
    $self->{pid} = $pid;
    my $deadline = Time::HiRes::time() + ($o{timeout} // 10);
    while (Time::HiRes::time() < $deadline) {
        if (waitpid($pid, POSIX::WNOHANG()) == $pid) {
            delete $self->{pid};
            die "Conflux::Mock: conflux-mock exited at start:\n" . $self->log_text;
        }
        if (!$self->{port} && $self->log_text =~ /listening on 127\.0\.0\.1:(\d+)/) {
            $self->{port} = $1;
        }
        if ($self->{port}) {
            my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $self->{port}, Timeout => 1);
            if ($s) {
                close $s;
                return $self;
            }
        }
        Time::HiRes::sleep(0.02);
    }
    $self->stop;
    die "Conflux::Mock: conflux-mock did not listen within the timeout:\n" . $self->log_text;
}

sub port { $_[0]{port} }

# $mock->url('/users/1'): http://127.0.0.1:PORT/users/1
sub url { "http://127.0.0.1:$_[0]{port}" . ($_[1] // '') }

# What conflux-mock wrote to stdout and stderr so far.
sub log_text {
    my ($self) = @_;
    open my $fh, '<', $self->{log} or return '';
    local $/;
    return <$fh> // '';
}

sub _call {
    my ($self, $method, $path, $body) = @_;
    my $r = HTTP::Tiny->new(timeout => 10)->request($method, $self->url($path),
        defined $body ? { content => $body, headers => { 'Content-Type' => 'application/json' } } : {});
    die "Conflux::Mock: $method $path: $r->{status} $r->{content}\n" unless $r->{success};
    return JSON::PP->new->decode($r->{content});
}

# The requests the mock received, oldest first, each {method, path, query, headers, body, stub, status, ...}; with
# filters: journal(path => '/users/1', method => 'POST', stub => 'GET /users/{id}', limit => 5).
sub journal {
    my ($self, %f) = @_;
    my $q = join '&', map { "$_=" . _escape($f{$_}) } sort keys %f;
    return $self->_call('GET', '/__mock/requests' . ($q ne '' ? "?$q" : ''));
}

# Counters since start or the last reset: {total, unmatched, inflight, max_inflight, stubs => {KEY => count}, ...}.
sub stats { $_[0]->_call('GET', '/__mock/stats') }

# Adds stubs at runtime: one stub (a hash), or a list of them; a stub with a live one's key replaces it.
sub add_stubs {
    my ($self, @stubs) = @_;
    return $self->_call('POST', '/__mock/stubs', JSON::PP->new->encode({ stubs => \@stubs }));
}

# The scenarios and their states; set_scenario('checkout', 'paid') moves one.
sub scenarios { $_[0]->_call('GET', '/__mock/scenarios') }

sub set_scenario {
    my ($self, $name, $state) = @_;
    return $self->_call('PUT', '/__mock/scenarios/' . _escape($name), JSON::PP->new->encode({ state => $state }));
}

# Clears the journal and the counters, restarts sequences, puts scenarios back in "started". Stubs stay.
sub reset { $_[0]->_call('POST', '/__mock/reset') }

# Stops the mock (SIGTERM, then SIGKILL after 5 s); returns its exit status.
sub stop {
    my ($self) = @_;
    my $pid = delete $self->{pid} // return $self->{status};
    kill 'TERM', $pid;
    my $deadline = Time::HiRes::time() + 5;
    while (waitpid($pid, POSIX::WNOHANG()) == 0) {
        if (Time::HiRes::time() > $deadline) {
            kill 'KILL', $pid;
            waitpid($pid, 0);
            last;
        }
        Time::HiRes::sleep(0.02);
    }
    $self->{status} = $? >> 8;
    return $self->{status};
}

sub DESTROY {
    my ($self) = @_;
    local ($?, $!, $@);
    $self->stop if $self->{pid};
}

sub _escape {
    my ($s) = @_;
    $s =~ s/([^A-Za-z0-9\-._~\/{}])/sprintf('%%%02X', ord $1)/ge;
    return $s;
}

1;
