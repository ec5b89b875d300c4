package awsapi

import "kindling/internal/config"

// Wire shapes of the version and alias operations (PublishVersion,
// ListVersionsByFunction, CreateAlias, GetAlias, UpdateAlias, DeleteAlias,
// ListAliases).

// PublishVersionInput is PublishVersion's request body.
type PublishVersionInput struct {
	CodeSha256  string  `json:"CodeSha256"`
	Description *string `json:"Description"`
	RevisionId  string  `json:"RevisionId"`
}

// ListVersionsByFunctionOutput is ListVersionsByFunction's response.
type ListVersionsByFunctionOutput struct {
	Versions   []FunctionConfiguration `json:"Versions"`
	NextMarker string                  `json:"NextMarker,omitempty"`
}

// AliasRoutingConfiguration is an alias's RoutingConfig as sent.
type AliasRoutingConfiguration struct {
	AdditionalVersionWeights map[string]float64 `json:"AdditionalVersionWeights"`
}

// AliasRoutingConfigurationInput is a request's RoutingConfig; a null
// weight is kept as nil so that it can be refused as the model does.
type AliasRoutingConfigurationInput struct {
	AdditionalVersionWeights map[string]*float64 `json:"AdditionalVersionWeights"`
}

// AliasConfiguration is what the alias operations return.
type AliasConfiguration struct {
	AliasArn        string                     `json:"AliasArn"`
	Name            string                     `json:"Name"`
	FunctionVersion string                     `json:"FunctionVersion"`
	Description     string                     `json:"Description"`
	RoutingConfig   *AliasRoutingConfiguration `json:"RoutingConfig,omitempty"`
	RevisionId      string                     `json:"RevisionId"`
}

// CreateAliasInput is CreateAlias's request body.
type CreateAliasInput struct {
	Name            *string                         `json:"Name"`
	FunctionVersion *string                         `json:"FunctionVersion"`
	Description     *string                         `json:"Description"`
	RoutingConfig   *AliasRoutingConfigurationInput `json:"RoutingConfig"`
}

// UpdateAliasInput is UpdateAlias's request body; absent members leave the
// setting unchanged.
type UpdateAliasInput struct {
	FunctionVersion *string                         `json:"FunctionVersion"`
	Description     *string                         `json:"Description"`
	RoutingConfig   *AliasRoutingConfigurationInput `json:"RoutingConfig"`
	RevisionId      string                          `json:"RevisionId"`
}

// ListAliasesOutput is ListAliases' response.
type ListAliasesOutput struct {
	Aliases    []AliasConfiguration `json:"Aliases"`
	NextMarker string               `json:"NextMarker,omitempty"`
}

// NewAliasConfiguration renders a as Lambda reports it.
func NewAliasConfiguration(a *config.Alias) AliasConfiguration {
	c := AliasConfiguration{
		AliasArn:        a.ARN(),
		Name:            a.Name,
		FunctionVersion: a.FunctionVersion,
		Description:     a.Description,
		RevisionId:      a.RevisionID,
	}
	if len(a.Weights) > 0 {
		c.RoutingConfig = &AliasRoutingConfiguration{AdditionalVersionWeights: a.Weights}
	}
	return c
}

// NewQualifiedConfiguration renders f as Lambda reports it when the
// request named a qualifier: FunctionArn carries it (":$LATEST", ":3" or
// the alias name, while Version is the version that the alias points to).
func NewQualifiedConfiguration(f *config.Function, qualifier string) FunctionConfiguration {
	c := NewFunctionConfiguration(f)
	if qualifier != "" {
		c.FunctionArn = f.ARN() + ":" + qualifier
	}
	return c
}

// ListedConfiguration is c as list operations (ListVersionsByFunction)
// show it: without the state fields.
func ListedConfiguration(c FunctionConfiguration) FunctionConfiguration {
	c.State, c.StateReason, c.StateReasonCode = "", "", ""
	c.LastUpdateStatus, c.LastUpdateStatusReason, c.LastUpdateStatusReasonCode = "", "", ""
	return c
}
