package cli

import (
	"fmt"
	"strings"

	"github.com/moby/moby/client"

	"github.com/spf13/cobra"
)

// newCompletionCommand generates shell completion scripts with cobra's
// generators.
func newCompletionCommand() *cobra.Command {
	return &cobra.Command{
		Use:       "completion bash|zsh|fish",
		Short:     "Generate the autocompletion script for the specified shell",
		Args:      exactArgs(1),
		ValidArgs: []string{"bash", "zsh", "fish"},
		RunE: func(cmd *cobra.Command, args []string) error {
			root, out := cmd.Root(), cmd.OutOrStdout()
			switch args[0] {
			case "bash":
				return root.GenBashCompletionV2(out, true)
			case "zsh":
				return root.GenZshCompletion(out)
			case "fish":
				return root.GenFishCompletion(out, true)
			}
			return fmt.Errorf("unsupported shell %q: use bash, zsh or fish", args[0])
		},
	}
}

// completeContainers completes container names (running ones only unless
// all is set), asking the daemon as docker's completion does.
func (c *Cli) completeContainers(all bool) cobra.CompletionFunc {
	return func(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		api, err := c.Client()
		if err != nil {
			return nil, cobra.ShellCompDirectiveError
		}
		res, err := api.ContainerList(cmd.Context(), client.ContainerListOptions{All: all})
		if err != nil {
			return nil, cobra.ShellCompDirectiveError
		}
		var names []cobra.Completion
		for _, ctr := range res.Items {
			for _, n := range ctr.Names {
				n = strings.TrimPrefix(n, "/")
				if !strings.Contains(n, "/") && strings.HasPrefix(n, toComplete) {
					names = append(names, n)
				}
			}
		}
		return names, cobra.ShellCompDirectiveNoFileComp
	}
}

// completeImages completes image references (repository:tag).
func (c *Cli) completeImages(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
	api, err := c.Client()
	if err != nil {
		return nil, cobra.ShellCompDirectiveError
	}
	res, err := api.ImageList(cmd.Context(), client.ImageListOptions{})
	if err != nil {
		return nil, cobra.ShellCompDirectiveError
	}
	var refs []cobra.Completion
	for _, img := range res.Items {
		for _, t := range img.RepoTags {
			if t != "<none>:<none>" && strings.HasPrefix(t, toComplete) {
				refs = append(refs, t)
			}
		}
	}
	return refs, cobra.ShellCompDirectiveNoFileComp
}

// firstArg limits a completion function to the first positional argument.
func firstArg(fn cobra.CompletionFunc) cobra.CompletionFunc {
	return func(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		if len(args) > 0 {
			return nil, cobra.ShellCompDirectiveDefault
		}
		return fn(cmd, args, toComplete)
	}
}

// addCompletions attaches argument and flag completions to the command tree.
func (c *Cli) addCompletions(root *cobra.Command) {
	running := c.completeContainers(false)
	all := c.completeContainers(true)
	byName := map[string]cobra.CompletionFunc{
		"stop": running, "restart": all, "kill": running, "attach": firstArg(running),
		"exec": firstArg(running), "logs": firstArg(all), "start": all, "rm": all, "wait": all,
		"rename": firstArg(all), "update": all, "inspect": all,
		"top": firstArg(running), "pause": running, "unpause": running, "export": firstArg(all),
		"rmi": c.completeImages, "history": firstArg(c.completeImages), "tag": c.completeImages,
		"push": firstArg(c.completeImages), "save": c.completeImages,
		"run": firstArg(c.completeImages), "create": firstArg(c.completeImages),
	}
	fixed := map[string][]cobra.Completion{
		"pull":    {"always", "missing", "never"},
		"restart": {"no", "always", "on-failure", "unless-stopped"},
	}
	var walk func(cmd *cobra.Command)
	walk = func(cmd *cobra.Command) {
		name := cmd.Name()
		if cmd.Parent() != nil && cmd.Parent().Name() == "image" {
			switch name {
			case "rm":
				name = "rmi"
			case "inspect":
				cmd.ValidArgsFunction = c.completeImages
			}
		}
		if fn, ok := byName[name]; ok && cmd.ValidArgsFunction == nil && cmd.Runnable() {
			cmd.ValidArgsFunction = fn
		}
		for flag, values := range fixed {
			if cmd.Flags().Lookup(flag) != nil && (flag != "restart" || name == "run" || name == "create" || name == "update") {
				_ = cmd.RegisterFlagCompletionFunc(flag, cobra.FixedCompletions(values, cobra.ShellCompDirectiveNoFileComp))
			}
		}
		for _, sub := range cmd.Commands() {
			walk(sub)
		}
	}
	walk(root)
}
