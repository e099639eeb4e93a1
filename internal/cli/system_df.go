package cli

import (
	"fmt"
	"io"
	"sort"
	"strconv"
	"time"

	"github.com/docker/go-units"
	"github.com/moby/moby/api/types/build"
	"github.com/moby/moby/api/types/volume"
	"github.com/moby/moby/client"
)

// This file renders "system df -v": one table per kind of object, as
// docker does.

const (
	dfImagesFormat     = "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}\t{{.SharedSize}}\t{{.UniqueSize}}\t{{.Containers}}"
	dfContainersFormat = "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.LocalVolumes}}\t{{.Size}}\t{{.RunningFor}}\t{{.Status}}\t{{.Names}}"
	dfVolumesFormat    = "table {{.Name}}\t{{.Links}}\t{{.Size}}"
	dfBuildCacheFormat = "table {{.ID}}\t{{.CacheType}}\t{{.Size}}\t{{.CreatedSince}}\t{{.LastUsedSince}}\t{{.UsageCount}}\t{{.Shared}}"
)

var (
	dfImageHeaders = map[string]string{
		"Repository": "REPOSITORY", "Tag": "TAG", "ID": "IMAGE ID", "CreatedSince": "CREATED",
		"Size": "SIZE", "SharedSize": "SHARED SIZE", "UniqueSize": "UNIQUE SIZE", "Containers": "CONTAINERS",
	}
	volumeHeaders     = map[string]string{"Name": "VOLUME NAME", "Links": "LINKS", "Size": "SIZE"}
	buildCacheHeaders = map[string]string{
		"ID": "CACHE ID", "CacheType": "CACHE TYPE", "Size": "SIZE", "CreatedSince": "CREATED",
		"LastUsedSince": "LAST USED", "UsageCount": "USAGE", "Shared": "SHARED",
	}
)

func writeDiskUsageVerbose(out io.Writer, du client.DiskUsageResult) error {
	var images []any
	for _, img := range du.Images.Items {
		row := imageRow{img: img, trunc: true, repo: "<none>", tag: "<none>"}
		// Only the first tag is shown.
		if rows := imageRows(img, true, false); len(img.RepoTags) > 0 && len(rows) > 0 {
			first := rows[0].(imageRow)
			row.repo, row.tag = first.repo, first.tag
		}
		images = append(images, row)
	}
	fmt.Fprint(out, "Images space usage:\n\n")
	if err := (listFormat{Default: dfImagesFormat, Headers: dfImageHeaders}).write(out, images); err != nil {
		return err
	}

	var containers []any
	for _, ctr := range du.Containers.Items {
		ctr.SizeRootFs = 0 // the virtual size is not shown
		containers = append(containers, psRow{s: ctr, trunc: true})
	}
	fmt.Fprint(out, "\nContainers space usage:\n\n")
	if err := (listFormat{Default: dfContainersFormat, Headers: psHeaders}).write(out, containers); err != nil {
		return err
	}

	var volumes []any
	for _, v := range du.Volumes.Items {
		volumes = append(volumes, volumeRow{v: v})
	}
	fmt.Fprint(out, "\nLocal Volumes space usage:\n\n")
	if err := (listFormat{Default: dfVolumesFormat, Headers: volumeHeaders}).write(out, volumes); err != nil {
		return err
	}

	records := append([]build.CacheRecord(nil), du.BuildCache.Items...)
	sort.SliceStable(records, func(i, j int) bool {
		// Shared records last, then most recently used first.
		if records[i].Shared != records[j].Shared {
			return !records[i].Shared
		}
		return lastUsed(records[i]).After(lastUsed(records[j]))
	})
	var cache []any
	for _, r := range records {
		cache = append(cache, buildCacheRow{r: r})
	}
	fmt.Fprintf(out, "\nBuild cache usage: %s\n\n", units.HumanSize(float64(du.BuildCache.TotalSize)))
	return (listFormat{Default: dfBuildCacheFormat, Headers: buildCacheHeaders}).write(out, cache)
}

func lastUsed(r build.CacheRecord) time.Time {
	if r.LastUsedAt == nil {
		return time.Time{}
	}
	return *r.LastUsedAt
}

// volumeRow exposes a volume with docker's volume-context fields.
type volumeRow struct{ v volume.Volume }

func (r volumeRow) MarshalJSON() ([]byte, error) { return fieldsJSON(r) }
func (r volumeRow) Name() string                 { return r.v.Name }
func (r volumeRow) Driver() string               { return r.v.Driver }
func (r volumeRow) Links() string {
	if r.v.UsageData == nil {
		return "N/A"
	}
	return strconv.FormatInt(r.v.UsageData.RefCount, 10)
}
func (r volumeRow) Size() string {
	if r.v.UsageData == nil {
		return "N/A"
	}
	return units.HumanSize(float64(r.v.UsageData.Size))
}

// buildCacheRow exposes a build cache record with docker's fields.
type buildCacheRow struct{ r build.CacheRecord }

func (b buildCacheRow) MarshalJSON() ([]byte, error) { return fieldsJSON(b) }
func (b buildCacheRow) ID() string                   { return b.r.ID }
func (b buildCacheRow) CacheType() string            { return b.r.Type }
func (b buildCacheRow) Size() string                 { return units.HumanSizeWithPrecision(float64(b.r.Size), 3) }
func (b buildCacheRow) CreatedSince() string {
	return units.HumanDuration(time.Now().UTC().Sub(b.r.CreatedAt)) + " ago"
}
func (b buildCacheRow) LastUsedSince() string {
	if b.r.LastUsedAt == nil {
		return ""
	}
	return units.HumanDuration(time.Now().UTC().Sub(*b.r.LastUsedAt)) + " ago"
}
func (b buildCacheRow) UsageCount() string { return strconv.Itoa(b.r.UsageCount) }
func (b buildCacheRow) Shared() string     { return strconv.FormatBool(b.r.Shared) }
