package cli

import (
	"context"
	"errors"
	"fmt"
	"github.com/docker/go-units"
	"io"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/distribution/reference"
	"github.com/moby/moby/api/types/image"
	"github.com/moby/moby/client"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/spf13/cobra"
)

func (c *Cli) newImageCommand() *cobra.Command {
	return managementCommand("image", "Manage images",
		withAlias(c.newImagesCommand(), "ls", "list"), c.newPullCommand(), c.newPushCommand(),
		c.newTagCommand(), withAlias(c.newRmiCommand(), "rm", "remove"), c.newSaveCommand(),
		c.newLoadCommand(), c.newImportCommand(), c.newHistoryCommand(),
		c.newImageInspectCommand(), c.newImagePruneCommand(), c.newBuildCommand(),
	)
}

const defaultImagesFormat = "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}"
const defaultImagesDigestFormat = "table {{.Repository}}\t{{.Tag}}\t{{.Digest}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}"

var imageHeaders = map[string]string{
	"ID": "IMAGE ID", "Repository": "REPOSITORY", "Tag": "TAG", "Digest": "DIGEST",
	"CreatedSince": "CREATED", "CreatedAt": "CREATED AT", "Size": "SIZE",
	"Containers": "CONTAINERS", "SharedSize": "SHARED SIZE", "UniqueSize": "UNIQUE SIZE",
	"VirtualSize": "SIZE",
}

func (c *Cli) newImagesCommand() *cobra.Command {
	var (
		all, digests, noTrunc, quiet bool
		format                       string
		filters                      filterOpts
	)
	cmd := &cobra.Command{
		Use:   "images [OPTIONS] [REPOSITORY[:TAG]]",
		Short: "List images",
		Args:  requiresMaxArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 {
				_ = filters.Set("reference=" + args[0])
			}
			if format == "" && !quiet {
				if cf, err := loadConfigFile(c.configDir); err == nil && cf.ImagesFormat != "" {
					format = cf.ImagesFormat
				}
			}
			api, err := c.Client()
			if err != nil {
				return err
			}
			res, err := api.ImageList(cmd.Context(), client.ImageListOptions{All: all, Filters: filters.f})
			if err != nil {
				return err
			}
			// Digests are shown with --digests or when the format asks.
			showDigest := digests || strings.Contains(format, "{{.Digest}}") || strings.Contains(format, ".Digest")
			var rows []any
			for _, img := range res.Items {
				rows = append(rows, imageRows(img, !noTrunc, showDigest)...)
			}
			def := defaultImagesFormat
			if digests {
				def = defaultImagesDigestFormat
			}
			return listFormat{Format: format, Default: def, Quiet: quiet, Headers: imageHeaders}.write(c.out, rows)
		},
	}
	fs := cmd.Flags()
	fs.BoolVarP(&all, "all", "a", false, "Show all images (default hides intermediate images)")
	fs.BoolVar(&digests, "digests", false, "Show digests")
	fs.VarP(&filters, "filter", "f", "Filter output based on conditions provided")
	fs.StringVar(&format, "format", "", formatHelp)
	fs.BoolVar(&noTrunc, "no-trunc", false, "Don't truncate output")
	fs.BoolVarP(&quiet, "quiet", "q", false, "Only show image IDs")
	return cmd
}

// imageRows expands an image into one row per repository:tag (and per
// digest-only repository), as docker images does.
func imageRows(img image.Summary, trunc, digests bool) []any {
	var rows []any
	seen := map[string]bool{}
	for _, rt := range img.RepoTags {
		named, err := reference.ParseNormalizedNamed(rt)
		if err != nil {
			continue
		}
		repo := reference.FamiliarName(named)
		tag := "<none>"
		if t, ok := named.(reference.Tagged); ok {
			tag = t.Tag()
		}
		seen[repo] = true
		digest := "<none>"
		if digests {
			digest = repoDigest(img, repo)
		}
		rows = append(rows, imageRow{img: img, trunc: trunc, repo: repo, tag: tag, digest: digest})
	}
	for _, rd := range img.RepoDigests {
		named, err := reference.ParseNormalizedNamed(rd)
		if err != nil {
			continue
		}
		repo := reference.FamiliarName(named)
		if seen[repo] {
			continue
		}
		seen[repo] = true
		digest := ""
		if digests {
			digest = repoDigest(img, repo)
		}
		rows = append(rows, imageRow{img: img, trunc: trunc, repo: repo, tag: "<none>", digest: digest})
	}
	if len(rows) == 0 {
		rows = append(rows, imageRow{img: img, trunc: trunc, repo: "<none>", tag: "<none>", digest: "<none>"})
	}
	return rows
}

func repoDigest(img image.Summary, repo string) string {
	for _, rd := range img.RepoDigests {
		named, err := reference.ParseNormalizedNamed(rd)
		if err != nil {
			continue
		}
		if reference.FamiliarName(named) == repo {
			if d, ok := named.(reference.Digested); ok {
				return d.Digest().String()
			}
		}
	}
	return "<none>"
}

// imageRow exposes an image with the fields of docker's ImageContext.
type imageRow struct {
	img               image.Summary
	trunc             bool
	repo, tag, digest string
}

func (r imageRow) MarshalJSON() ([]byte, error) { return fieldsJSON(r) }

func (r imageRow) ID() string {
	if r.trunc {
		return truncateID(r.img.ID)
	}
	return r.img.ID
}
func (r imageRow) Repository() string   { return r.repo }
func (r imageRow) Tag() string          { return r.tag }
func (r imageRow) Digest() string       { return r.digest }
func (r imageRow) CreatedSince() string { return humanSince(r.img.Created) }
func (r imageRow) CreatedAt() string    { return time.Unix(r.img.Created, 0).String() }
func (r imageRow) Size() string         { return humanSize(r.img.Size) }
func (r imageRow) VirtualSize() string  { return units.HumanSize(float64(r.img.Size)) }
func (r imageRow) Containers() string {
	if r.img.Containers == -1 {
		return "N/A"
	}
	return fmt.Sprint(r.img.Containers)
}
func (r imageRow) SharedSize() string {
	if r.img.SharedSize == -1 {
		return "N/A"
	}
	return humanSize(r.img.SharedSize)
}
func (r imageRow) UniqueSize() string {
	if r.img.SharedSize == -1 {
		return "N/A"
	}
	return units.HumanSize(float64(r.img.Size - r.img.SharedSize))
}

// pullImage pulls ref, rendering progress on out.
func (c *Cli) pullImage(ctx context.Context, ref, platform string, out io.Writer) error {
	api, err := c.Client()
	if err != nil {
		return err
	}
	auth, err := c.encodedAuth(ref)
	if err != nil {
		return err
	}
	opts := client.ImagePullOptions{RegistryAuth: auth}
	if platform != "" {
		p, err := parsePlatform(platform)
		if err != nil {
			return err
		}
		opts.Platforms = []ocispec.Platform{p}
	}
	resp, err := api.ImagePull(ctx, ref, opts)
	if err != nil {
		return err
	}
	defer resp.Close()
	return displayStream(resp, out)
}

// transferTarget is what pull and push share: the normalised name (with
// the default tag unless all, announced unless quiet), the client and the
// encoded credentials for its registry.
func (c *Cli) transferTarget(arg string, all, quiet bool) (reference.Named, *client.Client, string, error) {
	named, err := reference.ParseNormalizedNamed(arg)
	if err != nil {
		return nil, nil, "", err
	}
	if all && !reference.IsNameOnly(named) {
		return nil, nil, "", errors.New("tag can't be used with --all-tags/-a")
	}
	if !all && reference.IsNameOnly(named) {
		named = reference.TagNameOnly(named)
		if !quiet {
			fmt.Fprintf(c.out, "Using default tag: %s\n", named.(reference.Tagged).Tag())
		}
	}
	api, err := c.Client()
	if err != nil {
		return nil, nil, "", err
	}
	auth, err := c.encodedAuth(named.String())
	if err != nil {
		return nil, nil, "", err
	}
	return named, api, auth, nil
}

func (c *Cli) newPullCommand() *cobra.Command {
	var (
		all, quiet bool
		platform   string
	)
	cmd := &cobra.Command{
		Use:   "pull [OPTIONS] NAME[:TAG|@DIGEST]",
		Short: "Download an image from a registry",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			named, api, auth, err := c.transferTarget(args[0], all, quiet)
			if err != nil {
				return err
			}
			opts := client.ImagePullOptions{All: all, RegistryAuth: auth}
			if platform != "" {
				p, err := parsePlatform(platform)
				if err != nil {
					return err
				}
				opts.Platforms = []ocispec.Platform{p}
			}
			resp, err := api.ImagePull(cmd.Context(), reference.FamiliarString(named), opts)
			if err != nil {
				return err
			}
			defer resp.Close()
			out := c.out
			if quiet {
				out = io.Discard
			}
			if err := displayStream(resp, out); err != nil {
				return err
			}
			fmt.Fprintln(c.out, named.String())
			return nil
		},
	}
	fs := cmd.Flags()
	fs.BoolVarP(&all, "all-tags", "a", false, "Download all tagged images in the repository")
	fs.BoolVarP(&quiet, "quiet", "q", false, "Suppress verbose output")
	fs.StringVar(&platform, "platform", os.Getenv("DOCKER_DEFAULT_PLATFORM"), "Set platform if server is multi-platform capable")
	fs.Bool("disable-content-trust", true, "Skip image verification")
	return cmd
}

func (c *Cli) newPushCommand() *cobra.Command {
	var (
		all, quiet bool
		platform   string
	)
	cmd := &cobra.Command{
		Use:   "push [OPTIONS] NAME[:TAG]",
		Short: "Upload an image to a registry",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			named, api, auth, err := c.transferTarget(args[0], all, quiet)
			if err != nil {
				return err
			}
			opts := client.ImagePushOptions{All: all, RegistryAuth: auth}
			if platform != "" {
				p, err := parsePlatform(platform)
				if err != nil {
					return err
				}
				opts.Platform = &p
			}
			resp, err := api.ImagePush(cmd.Context(), reference.FamiliarString(named), opts)
			if err != nil {
				return err
			}
			defer resp.Close()
			out := c.out
			if quiet {
				out = io.Discard
			}
			if err := displayStream(resp, out); err != nil {
				return err
			}
			if quiet {
				fmt.Fprintln(c.out, named.String())
			}
			return nil
		},
	}
	fs := cmd.Flags()
	fs.BoolVarP(&all, "all-tags", "a", false, "Push all tags of an image to the repository")
	fs.BoolVarP(&quiet, "quiet", "q", false, "Suppress verbose output")
	fs.StringVar(&platform, "platform", os.Getenv("DOCKER_DEFAULT_PLATFORM"), "Push a platform-specific manifest as a single-platform image to the registry.")
	fs.Bool("disable-content-trust", true, "Skip image signing")
	return cmd
}

func (c *Cli) newTagCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "tag SOURCE_IMAGE[:TAG] TARGET_IMAGE[:TAG]",
		Short: "Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE",
		Args:  exactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if _, err := reference.ParseNormalizedNamed(args[1]); err != nil {
				return fmt.Errorf("Error parsing reference: %q is not a valid repository/tag: %w", args[1], err)
			}
			api, err := c.Client()
			if err != nil {
				return err
			}
			_, err = api.ImageTag(cmd.Context(), client.ImageTagOptions{Source: args[0], Target: args[1]})
			return err
		},
	}
}

func (c *Cli) newRmiCommand() *cobra.Command {
	var force, noPrune bool
	cmd := &cobra.Command{
		Use:   "rmi [OPTIONS] IMAGE [IMAGE...]",
		Short: "Remove one or more images",
		Args:  requiresMinArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			api, err := c.Client()
			if err != nil {
				return err
			}
			return c.forEach(args, false, func(name string) error {
				res, err := api.ImageRemove(cmd.Context(), name, client.ImageRemoveOptions{Force: force, PruneChildren: !noPrune})
				if err != nil {
					return err
				}
				for _, d := range res.Items {
					if d.Untagged != "" {
						fmt.Fprintf(c.out, "Untagged: %s\n", d.Untagged)
					} else {
						fmt.Fprintf(c.out, "Deleted: %s\n", d.Deleted)
					}
				}
				return nil
			})
		},
	}
	cmd.Flags().BoolVarP(&force, "force", "f", false, "Force removal of the image")
	cmd.Flags().BoolVar(&noPrune, "no-prune", false, "Do not delete untagged parents")
	return cmd
}

func (c *Cli) newSaveCommand() *cobra.Command {
	var (
		output   string
		platform string
	)
	cmd := &cobra.Command{
		Use:   "save [OPTIONS] IMAGE [IMAGE...]",
		Short: "Save one or more images to a tar archive (streamed to STDOUT by default)",
		Args:  requiresMinArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var out io.Writer = c.out
			if output == "" {
				if _, isTerm := isTerminalWriter(c.out); isTerm {
					return errors.New("cowardly refusing to save to a terminal. Use the -o flag or redirect")
				}
			}
			api, err := c.Client()
			if err != nil {
				return err
			}
			var opts []client.ImageSaveOption
			if platform != "" {
				p, err := parsePlatform(platform)
				if err != nil {
					return err
				}
				opts = append(opts, client.ImageSaveWithPlatforms(p))
			}
			rc, err := api.ImageSave(cmd.Context(), args, opts...)
			if err != nil {
				return err
			}
			defer rc.Close()
			if output != "" {
				f, err := os.CreateTemp(dirOf(output), ".berth-save-*")
				if err != nil {
					return fmt.Errorf("failed to save image: %w", err)
				}
				defer os.Remove(f.Name())
				if _, err := io.Copy(f, rc); err != nil {
					f.Close()
					return fmt.Errorf("failed to save image: %w", err)
				}
				if err := f.Close(); err != nil {
					return err
				}
				return os.Rename(f.Name(), output)
			}
			_, err = io.Copy(out, rc)
			return err
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "", "Write to a file, instead of STDOUT")
	cmd.Flags().StringVar(&platform, "platform", "", "Save only the given platform variant")
	return cmd
}

func dirOf(p string) string {
	if i := strings.LastIndex(p, "/"); i >= 0 {
		return p[:i+1]
	}
	return "."
}

func (c *Cli) newLoadCommand() *cobra.Command {
	var (
		input    string
		quiet    bool
		platform string
	)
	cmd := &cobra.Command{
		Use:   "load [OPTIONS]",
		Short: "Load an image from a tar archive or STDIN",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			var in io.Reader = c.in
			if input != "" {
				f, err := os.Open(input)
				if err != nil {
					return err
				}
				defer f.Close()
				in = f
			} else if _, isTerm := isTerminalReader(c.in); isTerm {
				return errors.New("requested load from stdin, but stdin is empty")
			}
			api, err := c.Client()
			if err != nil {
				return err
			}
			var opts []client.ImageLoadOption
			if _, isTerm := isTerminalWriter(c.out); quiet || !isTerm {
				opts = append(opts, client.ImageLoadWithQuiet(true))
			}
			if platform != "" {
				p, err := parsePlatform(platform)
				if err != nil {
					return err
				}
				opts = append(opts, client.ImageLoadWithPlatforms(p))
			}
			rc, err := api.ImageLoad(cmd.Context(), in, opts...)
			if err != nil {
				return err
			}
			defer rc.Close()
			return displayStream(rc, c.out)
		},
	}
	cmd.Flags().StringVarP(&input, "input", "i", "", "Read from tar archive file, instead of STDIN")
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "Suppress the load output")
	cmd.Flags().StringVar(&platform, "platform", "", "Load only the given platform variant")
	return cmd
}

func (c *Cli) newImportCommand() *cobra.Command {
	var (
		changes           listOpts
		message, platform string
	)
	cmd := &cobra.Command{
		Use:   "import [OPTIONS] file|URL|- [REPOSITORY[:TAG]]",
		Short: "Import the contents from a tarball to create a filesystem image",
		Args:  requiresMinArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) > 2 {
				return argError(cmd, "requires at least 1 and at most 2 arguments", "See")
			}
			src := client.ImageImportSource{SourceName: args[0]}
			switch {
			case args[0] == "-":
				src.Source = c.in
			case isURL(args[0]):
			default:
				f, err := os.Open(args[0])
				if err != nil {
					return err
				}
				defer f.Close()
				src = client.ImageImportSource{Source: f, SourceName: "-"}
			}
			ref := ""
			if len(args) == 2 {
				ref = args[1]
			}
			opts := client.ImageImportOptions{Message: message, Changes: changes.values}
			if platform != "" {
				p, err := parsePlatform(platform)
				if err != nil {
					return err
				}
				opts.Platform = p
			}
			api, err := c.Client()
			if err != nil {
				return err
			}
			rc, err := api.ImageImport(cmd.Context(), src, ref, opts)
			if err != nil {
				return err
			}
			defer rc.Close()
			return displayStream(rc, c.out)
		},
	}
	cmd.Flags().VarP(&changes, "change", "c", "Apply Dockerfile instruction to the created image")
	cmd.Flags().StringVarP(&message, "message", "m", "", "Set commit message for imported image")
	cmd.Flags().StringVar(&platform, "platform", "", "Set platform if server is multi-platform capable")
	return cmd
}

func isURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https")
}

var historyHeaders = map[string]string{
	"ID": "IMAGE", "CreatedSince": "CREATED", "CreatedAt": "CREATED AT",
	"CreatedBy": "CREATED BY", "Size": "SIZE", "Comment": "COMMENT",
}

const defaultHistoryFormat = "table {{.ID}}\t{{.CreatedSince}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}"

func (c *Cli) newHistoryCommand() *cobra.Command {
	var (
		human, noTrunc, quiet bool
		format, platform      string
	)
	cmd := &cobra.Command{
		Use:   "history [OPTIONS] IMAGE",
		Short: "Show the history of an image",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			api, err := c.Client()
			if err != nil {
				return err
			}
			var opts []client.ImageHistoryOption
			if platform != "" {
				p, err := parsePlatform(platform)
				if err != nil {
					return err
				}
				opts = append(opts, client.ImageHistoryWithPlatform(p))
			}
			res, err := api.ImageHistory(cmd.Context(), args[0], opts...)
			if err != nil {
				return err
			}
			rows := make([]any, 0, len(res.Items))
			for _, h := range res.Items {
				rows = append(rows, historyRow{h: h, trunc: !noTrunc, human: human})
			}
			headers := historyHeaders
			if !human {
				headers = map[string]string{}
				for k, v := range historyHeaders {
					headers[k] = v
				}
				headers["CreatedSince"] = "CREATED AT"
			}
			return listFormat{Format: format, Default: defaultHistoryFormat, Quiet: quiet, Headers: headers}.write(c.out, rows)
		},
	}
	fs := cmd.Flags()
	fs.BoolVarP(&human, "human", "H", true, "Print sizes and dates in human readable format")
	fs.StringVar(&format, "format", "", formatHelp)
	fs.BoolVar(&noTrunc, "no-trunc", false, "Don't truncate output")
	fs.BoolVarP(&quiet, "quiet", "q", false, "Only show image IDs")
	fs.StringVar(&platform, "platform", "", "Show history for the given platform")
	return cmd
}

// historyRow exposes a history entry with docker's HistoryContext fields.
type historyRow struct {
	h            image.HistoryResponseItem
	trunc, human bool
}

func (r historyRow) MarshalJSON() ([]byte, error) { return fieldsJSON(r) }

func (r historyRow) ID() string {
	if r.trunc && r.h.ID != "<missing>" {
		return truncateID(r.h.ID)
	}
	return r.h.ID
}

func (r historyRow) CreatedAt() string {
	return time.Unix(r.h.Created, 0).Format(time.RFC3339)
}

func (r historyRow) CreatedSince() string {
	if !r.human {
		return r.CreatedAt()
	}
	return humanSince(r.h.Created)
}

func (r historyRow) CreatedBy() string {
	s := strings.ReplaceAll(r.h.CreatedBy, "\t", " ")
	if r.trunc {
		s = ellipsis(s, 45)
	}
	return s
}

func (r historyRow) Size() string {
	if r.human {
		return humanSize(r.h.Size)
	}
	return fmt.Sprint(r.h.Size)
}

func (r historyRow) Comment() string { return r.h.Comment }

func (c *Cli) newImageInspectCommand() *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "inspect [OPTIONS] IMAGE [IMAGE...]",
		Short: "Display detailed information on one or more images",
		Args:  requiresMinArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.inspect(cmd, args, "image", format, false)
		},
	}
	cmd.Flags().StringVarP(&format, "format", "f", "", inspectFormatHelp)
	return cmd
}

func (c *Cli) newImagePruneCommand() *cobra.Command {
	var (
		all, force bool
		filters    filterOpts
	)
	cmd := &cobra.Command{
		Use:   "prune [OPTIONS]",
		Short: "Remove unused images",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			warning := "WARNING! This will remove all dangling images."
			if all {
				warning = "WARNING! This will remove all images without at least one container associated to them."
			}
			if !force && !c.confirm(warning) {
				return nil
			}
			reclaimed, out, err := c.pruneImages(cmd.Context(), all, filters.f)
			if err != nil {
				return err
			}
			fmt.Fprint(c.out, out)
			fmt.Fprintf(c.out, "Total reclaimed space: %s\n", units.HumanSize(float64(reclaimed)))
			return nil
		},
	}
	cmd.Flags().BoolVarP(&all, "all", "a", false, "Remove all unused images, not just dangling ones")
	cmd.Flags().BoolVarP(&force, "force", "f", false, "Do not prompt for confirmation")
	cmd.Flags().Var(&filters, "filter", `Provide filter values (e.g. "until=<timestamp>")`)
	return cmd
}

func (c *Cli) pruneImages(ctx context.Context, all bool, f client.Filters) (uint64, string, error) {
	api, err := c.Client()
	if err != nil {
		return 0, "", err
	}
	f = f.Clone()
	if f == nil {
		f = client.Filters{}
	}
	if all {
		f.Add("dangling", "false")
	} else {
		f.Add("dangling", "true")
	}
	res, err := api.ImagePrune(ctx, client.ImagePruneOptions{Filters: f})
	if err != nil {
		return 0, "", err
	}
	var b strings.Builder
	if len(res.Report.ImagesDeleted) > 0 {
		b.WriteString("Deleted Images:\n")
		for _, d := range res.Report.ImagesDeleted {
			if d.Untagged != "" {
				fmt.Fprintf(&b, "untagged: %s\n", d.Untagged)
			} else {
				fmt.Fprintf(&b, "deleted: %s\n", d.Deleted)
			}
		}
		b.WriteString("\n")
	}
	return res.Report.SpaceReclaimed, b.String(), nil
}
