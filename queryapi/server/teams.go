package server

import (
	"context"

	"google.golang.org/protobuf/types/known/wrapperspb"

	pb "github.com/changelens/changelens/queryapi/gen/changelens/v1"
	"github.com/changelens/changelens/queryapi/teams"
)

// teamServices resolves the team parameter of a listing to its services
// (nil when team is empty): 400 naming team for an unknown one, and naming
// service when service is given and is not one of the team's.
func (s *service) teamServices(team, service string) ([]string, error) {
	if team == "" {
		return nil, nil
	}
	if !teams.ValidName(team) { // a parameter that breaks the file's rule can name no team
		return nil, badField("team", "%s", teams.NameRule)
	}
	t, ok := s.teams.Team(team)
	if !ok {
		return nil, badField("team", "no team %q (GET /v1/teams lists them)", team)
	}
	if service != "" && !t.Has(service) {
		return nil, badField("service", "%q is not a service of team %q", service, team)
	}
	return t.Services, nil
}

// ListTeams is GET /v1/teams: the server's teams file, nothing read from
// ClickHouse.
func (s *service) ListTeams(_ context.Context, _ *pb.ListTeamsRequest) (*pb.ListTeamsResponse, error) {
	ts := s.teams.Teams()
	out := &pb.ListTeamsResponse{Teams: make([]*pb.Team, 0, len(ts))}
	for _, t := range ts {
		out.Teams = append(out.Teams, teamToPB(t))
	}
	return out, nil
}

func teamToPB(t teams.Team) *pb.Team {
	opt := func(v *float64) *wrapperspb.DoubleValue {
		if v == nil {
			return nil
		}
		return wrapperspb.Double(*v)
	}
	tt := t.Targets
	out := &pb.Team{
		Name:     t.Name,
		Services: append([]string{}, t.Services...),
		Targets: &pb.TeamTargets{
			DeploymentFrequencyPerDay: opt(tt.DeploymentFrequencyPerDay),
			LeadTimeHours:             opt(tt.LeadTimeHours),
			ChangeFailureRate:         opt(tt.ChangeFailureRate),
			RecoveryTimeHours:         opt(tt.RecoveryTimeHours),
			ReworkRate:                opt(tt.ReworkRate),
		},
		Focus: make([]*pb.TeamFocus, 0, len(t.Focus)),
	}
	for _, f := range t.Focus {
		out.Focus = append(out.Focus, &pb.TeamFocus{Period: f.Period, Metric: f.Metric})
	}
	return out
}
