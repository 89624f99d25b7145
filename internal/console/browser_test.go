package console_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// chromium finds a Chromium to drive; "" when there is none.
func chromium() string {
	if p := os.Getenv("PARLEY_CHROMIUM"); p != "" {
		return p
	}
	for _, n := range []string{"chromium", "chromium-browser", "google-chrome", "headless-shell"} {
		if p, err := exec.LookPath(n); err == nil {
			return p
		}
	}
	return ""
}

// screenshotDir is where the browser test saves its screenshots:
// $PARLEY_SCREENSHOTS (interop/console.sh sets interop/.work/console/
// screenshots), else a temporary directory.
func screenshotDir(t *testing.T) string {
	if d := os.Getenv("PARLEY_SCREENSHOTS"); d != "" {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		return d
	}
	return t.TempDir()
}

// TestBrowser drives headless Chromium through the console as the issue
// describes: an admin logs in, sees the dashboard chart drawn from live
// samples, creates a user; the user logs in to the self-service page,
// changes the password, and logs in over XMPP with the new one; the user
// gets 403 on every admin URL; every page is photographed, at desktop
// and at phone size, and no page is wider than a phone's screen.
func TestBrowser(t *testing.T) {
	exe := chromium()
	if exe == "" {
		t.Skip("headless Chromium not found (install Debian's chromium; interop/console.sh does): browser test skipped")
	}
	if testing.Short() {
		t.Skip("browser test skipped in -short mode")
	}
	ts := start(t, "")
	ts.Login(t, "alice", pw, "laptop").Send("<presence/>")
	dir := screenshotDir(t)
	t.Logf("screenshots in %s", dir)
	_, port, _ := net.SplitHostPort(ts.HTTPSAddr().String())
	origin := "https://localhost:" + port

	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(exe),
		chromedp.NoSandbox,
		chromedp.Flag("ignore-certificate-errors", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.WindowSize(1200, 900),
	)
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelA()
	newTab := func() (context.Context, context.CancelFunc) {
		ctx, cancel := chromedp.NewContext(actx)
		ctx, cancel2 := context.WithTimeout(ctx, 120*time.Second)
		return ctx, func() { cancel2(); cancel() }
	}
	shot := func(ctx context.Context, name string) {
		t.Helper()
		buf, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatalf("screenshot %s: %v", name, err)
		}
		if err := os.WriteFile(filepath.Join(dir, name+".png"), buf, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	run := func(ctx context.Context, what string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, actions...); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	text := func(ctx context.Context, what string, a chromedp.Action[string]) string {
		t.Helper()
		v, err := chromedp.Run(ctx, a)
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		return v
	}
	// phone photographs a page at 390x844 and checks it has no
	// horizontal scrolling.
	phone := func(ctx context.Context, url, name string) {
		t.Helper()
		run(ctx, "phone "+name,
			chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile),
			chromedp.Navigate(url), chromedp.WaitReady("main"))
		wide, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.documentElement.scrollWidth > window.innerWidth + 1`))
		if err != nil {
			t.Fatal(err)
		}
		shot(ctx, name+"-phone")
		if wide {
			t.Errorf("%s is wider than a phone's screen", url)
		}
		run(ctx, "desktop", chromedp.EmulateViewport(1200, 900))
	}

	// The admin.
	adm, cancel := newTab()
	defer cancel()
	run(adm, "admin login page", chromedp.Navigate(origin+"/admin/login"), chromedp.WaitVisible(`input[name=jid]`))
	shot(adm, "admin-login")
	run(adm, "admin logs in",
		chromedp.SendKeys(`input[name=jid]`, "admin@localhost"),
		chromedp.SendKeys(`input[name=password]`, pw),
		chromedp.Submit(`input[name=password]`))
	if os.Getenv("DEBUGB") != "" {
		time.Sleep(3 * time.Second)
		t.Log(text(adm, "dbg", chromedp.Evaluate[string](`location.href + "\n" + document.body.innerText`)))
	}
	run(adm, "dashboard", chromedp.WaitVisible(`canvas[data-series=sessions]`))
	// The chart shows data: the script drew the samples it fetched.
	deadline := time.Now().Add(30 * time.Second)
	for {
		points, err := chromedp.Run(adm, chromedp.AttributeValue(`canvas[data-series=sessions]`, "data-points"))
		if err != nil {
			t.Fatal(err)
		}
		tile := text(adm, "tile", chromedp.Text(`#v-sessions`))
		if points.Value != "" && points.Value != "0" && strings.TrimSpace(tile) == "1" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the sessions chart drew no points, or the tile never showed alice's session")
		}
		time.Sleep(500 * time.Millisecond)
	}
	shot(adm, "admin-dashboard")

	run(adm, "users page", chromedp.Navigate(origin+"/admin/users?host=localhost"), chromedp.WaitVisible(`form[action="/admin/users/create"]`))
	shot(adm, "admin-users")
	run(adm, "create user",
		chromedp.SendKeys(`form[action="/admin/users/create"] input[name=username]`, "erin"),
		chromedp.SendKeys(`form[action="/admin/users/create"] input[name=password]`, "Erin-first1"),
		chromedp.SendKeys(`form[action="/admin/users/create"] input[name=password2]`, "Erin-first1"),
		chromedp.SendKeys(`form[action="/admin/users/create"] input[name=email]`, "erin@example.org"),
		chromedp.Submit(`form[action="/admin/users/create"] input[name=username]`),
		chromedp.WaitVisible(`.flash`))
	flash := text(adm, "flash", chromedp.Text(`.flash`))
	if !strings.Contains(flash, "Created erin@localhost") {
		t.Fatalf("after create: %q", flash)
	}
	run(adm, "alice's page", chromedp.Navigate(origin+"/admin/user?jid=alice@localhost"), chromedp.WaitVisible(`main table`))
	shot(adm, "admin-user")
	run(adm, "create room", chromedp.Navigate(origin+"/admin/rooms?host=localhost"), chromedp.WaitVisible(`form[action="/admin/rooms/create"]`),
		chromedp.SendKeys(`form[action="/admin/rooms/create"] input[name=name]`, "lobby"),
		chromedp.SendKeys(`form[action="/admin/rooms/create"] input[name=title]`, "The lobby"),
		chromedp.Submit(`form[action="/admin/rooms/create"] input[name=name]`), chromedp.WaitVisible(`.flash`))
	shot(adm, "admin-rooms")
	for _, p := range []struct{ path, name string }{
		{"/admin/room?room=lobby@conference.localhost", "admin-room"},
		{"/admin/groups?host=localhost", "admin-groups"},
		{"/admin/announce?host=localhost", "admin-announce"},
		{"/admin/federation", "admin-federation"},
		{"/admin/log", "admin-log"},
		{"/admin/config", "admin-config"},
	} {
		run(adm, p.name, chromedp.Navigate(origin+p.path), chromedp.WaitVisible(`main h1`))
		title := text(adm, p.name+" title", chromedp.Title())
		if strings.Contains(title, "Forbidden") {
			t.Errorf("%s: forbidden for the admin", p.path)
		}
		shot(adm, p.name)
	}
	for _, p := range []struct{ path, name string }{
		{"/admin/", "admin-dashboard"}, {"/admin/users?host=localhost", "admin-users"},
		{"/admin/user?jid=alice@localhost", "admin-user"}, {"/admin/log", "admin-log"}, {"/admin/config", "admin-config"},
	} {
		phone(adm, origin+p.path, p.name)
	}

	// The new user, in a browser of their own.
	usr, cancelU := newTab()
	defer cancelU()
	run(usr, "account login", chromedp.Navigate(origin+"/account/login"), chromedp.WaitVisible(`input[name=jid]`))
	shot(usr, "account-login")
	run(usr, "erin logs in",
		chromedp.SendKeys(`input[name=jid]`, "erin@localhost"),
		chromedp.SendKeys(`input[name=password]`, "Erin-first1"),
		chromedp.Submit(`input[name=password]`),
		chromedp.WaitVisible(`#password-form`))
	run(usr, "change password",
		chromedp.SendKeys(`#password-form input[name=current]`, "Erin-first1"),
		chromedp.SendKeys(`#password-form input[name=password]`, "Erin-second2"),
		chromedp.SendKeys(`#password-form input[name=password2]`, "Erin-second2"),
		chromedp.Submit(`#password-form input[name=current]`),
		chromedp.WaitVisible(`.flash`))
	flash = text(usr, "flash", chromedp.Text(`.flash`))
	if !strings.Contains(flash, "Your password is changed") {
		t.Fatalf("after the password change: %q", flash)
	}
	shot(usr, "account")
	phone(usr, origin+"/account/", "account")
	ts.Login(t, "erin", "Erin-second2", "phone").Close()

	// The user on every admin URL: 403, GET and POST (with the user's own
	// CSRF token), from the browser itself.
	run(usr, "csrf page", chromedp.Navigate(origin+"/account/"), chromedp.WaitVisible(`#password-form`))
	csrf := text(usr, "csrf", chromedp.Value(`#password-form input[name=csrf]`))
	for _, r := range ts.Console().Routes() {
		if !strings.HasPrefix(r.Path, "/admin/") || r.Path == "/admin/logout" {
			continue
		}
		js := fmt.Sprintf(`fetch(%q, {method: %q, credentials: "same-origin", redirect: "manual",
			headers: {"Content-Type": "application/x-www-form-urlencoded"}, body: %s}).then(r => r.status)`,
			r.Path+"?host=localhost", r.Method, map[bool]string{true: `"csrf=` + csrf + `&host=localhost&jid=alice@localhost"`, false: "undefined"}[r.Method == "POST"])
		status, err := chromedp.Run(usr, chromedp.Evaluate[int](js, chromedp.EvalAwaitPromise))
		if err != nil {
			t.Fatalf("%s: %v", r.Path, err)
		}
		if status != 403 {
			t.Errorf("user %s %s: %d, want 403", r.Method, r.Path, status)
		}
	}
	run(usr, "forbidden page", chromedp.Navigate(origin+"/admin/users"), chromedp.WaitVisible(`main .error`))
	shot(usr, "admin-forbidden")
	if t.Failed() {
		return
	}
	if os.Getenv("PARLEY_SCREENSHOTS") != "" {
		t.Logf("screenshots of every page saved in %s", dir)
	}
}
